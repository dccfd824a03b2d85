#!/bin/bash
# devpi's entrypoint: initialise the server directory once, then run devpi-server.
#
#   devpi-entrypoint [serve]   initialise when needed, then exec devpi-server (the default)
#   devpi-entrypoint init      initialise when needed, then exit 0 (an init container)
#
# Environment:
#   DEVPI_SERVERDIR      the server directory (default /devpi; a volume's mount point is fine)
#   DEVPI_HOST           the listen address (default 0.0.0.0)
#   DEVPI_LISTEN_PORT    the listen port (default 3141). Not DEVPI_PORT: Kubernetes injects DEVPI_PORT
#                        (tcp://10.x.y.z:3141) into every pod of a namespace with a Service named devpi.
#   DEVPI_OUTSIDE_URL    the URL clients reach the server at (optional: --outside-url)
#   DEVPI_ROOT_PASSWORD  root's password: needed only to initialise. A fresh server gets it with devpi-init;
#                        an imported one gets it too, replacing the exported root's password, so that the
#                        one source of root's password is the deployment's secret.
#   DEVPI_IMPORT_DIR     a devpi-export directory (optional). When it holds an export (dataindex.json), the
#                        first initialisation imports it instead of starting empty.
#
# "Initialised" means $DEVPI_SERVERDIR/.serverversion exists. Initialisation happens in a scratch directory
# inside the server directory; its files are moved up one by one, .serverversion last, under a marker that
# tells the next start to clear them, so an initialisation cut short never looks done. A server directory
# holding other files but no .serverversion is refused: it is not one this entrypoint made.
# The root password travels only in the environment (devpi reads DEVPISERVER_ROOT_PASSWD) and on a pipe:
# never in a process's arguments, never printed.
set -euo pipefail

SERVERDIR=${DEVPI_SERVERDIR:-/devpi}
HOST=${DEVPI_HOST:-0.0.0.0}
PORT=${DEVPI_LISTEN_PORT:-3141}
OUTSIDE_URL=${DEVPI_OUTSIDE_URL:-}
IMPORT_DIR=${DEVPI_IMPORT_DIR:-}
ROOT_PASSWORD=${DEVPI_ROOT_PASSWORD:-}
# devpi reads DEVPI_SERVERDIR itself (deprecated) and needs none of these: the server never sees them.
unset DEVPI_SERVERDIR DEVPI_ROOT_PASSWORD

SCRATCH="$SERVERDIR/.blumeops-init"
MOVING="$SERVERDIR/.blumeops-init-moving"
SECRET="$SERVERDIR/.secret"

log() { printf 'devpi-entrypoint: %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

# Every entry of the server directory but a file system's lost+found and the entrypoint's own scratch.
foreign_entries() {
  local entry name
  for entry in "$SERVERDIR"/* "$SERVERDIR"/.[!.]* "$SERVERDIR"/..?*; do
    [[ -e "$entry" || -L "$entry" ]] || continue
    name=${entry##*/}
    case "$name" in
    lost+found | .blumeops-init | .blumeops-init-moving) ;;
    *) printf '%s\n' "$name" ;;
    esac
  done
}

set_root_password() {
  local output
  # devpi-passwd asks twice through getpass; without a terminal (setsid: a session of its own) getpass
  # reads the answers from stdin, here a pipe. Its prompts go to the log, the password does not.
  if ! output=$(printf '%s\n%s\n' "$ROOT_PASSWORD" "$ROOT_PASSWORD" |
    setsid -w devpi-passwd --serverdir "$SCRATCH" root 2>&1); then
    printf '%s\n' "$output" >&2
    die "devpi-passwd could not set root's password in the imported server"
  fi
}

initialise() {
  local entry name
  [[ -d "$SERVERDIR" ]] || die "$SERVERDIR does not exist (mount the data volume there)"
  [[ -w "$SERVERDIR" ]] || die "$SERVERDIR is not writable by uid $(id -u) (fsGroup, or the volume's owner)"
  if [[ -e "$MOVING" ]]; then
    log "an initialisation was cut short while moving its files: clearing them"
    while IFS= read -r name; do
      rm -rf "${SERVERDIR:?}/$name"
    done < <(foreign_entries)
    rm -f "$MOVING"
  fi
  if [[ -n "$(foreign_entries)" ]]; then
    die "$SERVERDIR holds files but no .serverversion: not a server directory this entrypoint made;" \
      "refusing to initialise over it (inspect it, empty it or restore .serverversion)"
  fi
  rm -rf "$SCRATCH"
  mkdir -m 0700 "$SCRATCH"
  [[ -n "$ROOT_PASSWORD" ]] || die "DEVPI_ROOT_PASSWORD is not set: it is needed to initialise $SERVERDIR"
  if [[ -n "$IMPORT_DIR" && -f "$IMPORT_DIR/dataindex.json" ]]; then
    log "importing the export in $IMPORT_DIR into a new server directory"
    DEVPISERVER_ROOT_PASSWD="$ROOT_PASSWORD" devpi-import --serverdir "$SCRATCH" "$IMPORT_DIR" ||
      die "devpi-import of $IMPORT_DIR failed; $SERVERDIR stays uninitialised and the next start tries again"
    set_root_password
  else
    if [[ -n "$IMPORT_DIR" ]]; then
      log "$IMPORT_DIR holds no export (no dataindex.json): initialising an empty server"
    fi
    DEVPISERVER_ROOT_PASSWD="$ROOT_PASSWORD" devpi-init --serverdir "$SCRATCH" ||
      die "devpi-init failed; $SERVERDIR stays uninitialised and the next start tries again"
  fi
  devpi-gen-secret --secretfile "$SCRATCH/.secret" >/dev/null 2>&1 ||
    die "devpi-gen-secret could not write $SCRATCH/.secret"
  [[ -f "$SCRATCH/.serverversion" ]] || die "the initialisation wrote no .serverversion in $SCRATCH"
  : >"$MOVING"
  for entry in "$SCRATCH"/* "$SCRATCH"/.[!.]* "$SCRATCH"/..?*; do
    [[ -e "$entry" || -L "$entry" ]] || continue
    [[ "${entry##*/}" != .serverversion ]] || continue
    mv "$entry" "$SERVERDIR/"
  done
  mv "$SCRATCH/.serverversion" "$SERVERDIR/.serverversion"
  rm -f "$MOVING"
  rmdir "$SCRATCH"
  log "initialised $SERVERDIR"
}

case "${1:-serve}" in
serve | init) ;;
*) die "unknown command '$1': use serve (the default) or init" ;;
esac

if [[ -f "$SERVERDIR/.serverversion" ]]; then
  log "$SERVERDIR is initialised: not initialising again"
  if [[ -n "$IMPORT_DIR" && -f "$IMPORT_DIR/dataindex.json" ]]; then
    # a server directory is imported once: after a rollback and a new cutover the export offered now (what the
    # host server held then) is not merged into the one the cluster kept, and that is said, not done silently
    log "WARNING: an export is offered in $IMPORT_DIR but $SERVERDIR was initialised before: it is not imported." \
      "What the host server received since the first import is only in that export (devpi-import it into a" \
      "scratch server by hand to merge)"
  fi
else
  initialise
fi
ROOT_PASSWORD=""
if [[ ! -f "$SECRET" ]]; then
  devpi-gen-secret --secretfile "$SECRET" >/dev/null 2>&1 || die "devpi-gen-secret could not write $SECRET"
fi
# a volume with fsGroup may have made the secret group-readable: devpi refuses such a secret file
chmod 0600 "$SECRET" || die "cannot make $SECRET private (chmod 0600): devpi refuses a shared secret file"

if [[ "${1:-serve}" == init ]]; then
  exit 0
fi
args=(--serverdir "$SERVERDIR" --secretfile "$SECRET" --host "$HOST" --port "$PORT")
if [[ -n "$OUTSIDE_URL" ]]; then
  args+=(--outside-url "$OUTSIDE_URL")
fi
exec devpi-server "${args[@]}"
