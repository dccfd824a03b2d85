# ---- components/host/scripts/lib.sh: helpers shared by every blumeops host step and agent script ----
# A step's stdin carries only the blocks of this file it uses (found by name, transitively): blocks are
# separated by blank lines, and a function never spans two blocks. A block that defines no function is
# the prologue, sent with every step.
set -euo pipefail
umask 022
# The bounds (seconds) of external calls: a call that outlives its bound is killed and the step fails.
# QUICK: a query (launchctl print, tailscale serve status, docker info/port, plutil, file, curl, kubectl);
# CHANGE: a change (launchctl bootstrap/bootout, tailscale serve, minikube cp/ssh/status, zot verify);
# LONG: minikube start and delete (a first start pulls the kicbase image). A step uses some of them.
# shellcheck disable=SC2034
readonly BLUMEOPS_QUICK=60 BLUMEOPS_CHANGE=120 BLUMEOPS_LONG=1800
# die exits the whole step, also from inside $(...) or a pipeline: a subshell's die signals the step's shell.
# A step killed from outside (SSH session gone: HUP; Pulumi cancelled: INT/TERM) exits the same way, so the
# EXIT trap still removes its scratch and staged files.
trap 'exit 1' TERM HUP INT
# fd 9: the step's own stderr, for messages that must not vanish into a caller's 2>/dev/null.
exec 9>&2

log() { printf 'blumeops[%s]: %s\n' "$STEP" "$*" >&2; }
die() {
  { printf 'blumeops[%s]: ERROR: %s\n' "$STEP" "$*" >&9; } 2>/dev/null || printf 'blumeops[%s]: ERROR: %s\n' "$STEP" "$*" >&2
  if ((BASH_SUBSHELL > 0)); then
    kill -TERM "$$" 2>/dev/null || true
  fi
  exit 1
}

# Temp files of this run, removed on exit whatever happens (nothing half written stays behind); scratch files
# live in blumeops_tmpdir, named after the step's shell ($$ is the same in its subshells), removed on exit too.
BLUMEOPS_TEMPS=()
cleanup_temps() {
  local temp group
  # a bounded call still running (the step was killed from outside): its whole process group goes first
  for group in "${TMPDIR:-/tmp}/blumeops.$$"/group.*; do
    [[ -e "$group" ]] || continue
    kill -KILL -- "-${group##*.}" 2>/dev/null || true
  done
  for temp in "${BLUMEOPS_TEMPS[@]+"${BLUMEOPS_TEMPS[@]}"}"; do
    rm -f "$temp"
  done
  rm -rf "${TMPDIR:-/tmp}/blumeops.$$"
}
trap cleanup_temps EXIT
# blumeops_scratch sets BLUMEOPS_SCRATCH to that directory, made when missing, in the calling shell (no subshell:
# bounded calls it once per external call); blumeops_tmpdir prints it.
blumeops_scratch() {
  BLUMEOPS_SCRATCH="${TMPDIR:-/tmp}/blumeops.$$"
  if [[ ! -d "$BLUMEOPS_SCRATCH" ]]; then
    mkdir -m 0700 "$BLUMEOPS_SCRATCH" ||
      die "cannot create the scratch directory $BLUMEOPS_SCRATCH (is ${TMPDIR:-/tmp} full or read-only?)"
  fi
  [[ -O "$BLUMEOPS_SCRATCH" && ! -L "$BLUMEOPS_SCRATCH" ]] ||
    die "the scratch directory $BLUMEOPS_SCRATCH is not this user's own directory"
}
blumeops_tmpdir() {
  blumeops_scratch
  printf '%s' "$BLUMEOPS_SCRATCH"
}

# bounded SECONDS COMMAND [ARG...]: run COMMAND with stdin from /dev/null (never the step's own stdin); when
# it outlives SECONDS it is killed and the step stops (a call that did not answer is never read as "no").
# COMMAND runs in a process group of its own (job control, `set -m`, for the launch only), and the bound
# kills the whole group: a tool that forked (a child holding the step's stdout, and so the SSH session, open)
# goes with it. Nothing of a bounded call outlives the call: once COMMAND itself has ended (whatever its
# status), what is left of its group (a child it started and did not wait for, holding the step's stdout or
# the pipe of a $(...) open) gets TERM, and KILL after a grace of a second; COMMAND's status is returned.
# Limit: a process that left the group itself (setsid, setpgid: what a daemon does, e.g. `git gc --auto` in
# the background) is out of reach of both kills; none of the tools bounded here leaves one on purpose (they
# ask a daemon instead: launchd, tailscaled, Docker Desktop). What a tool leaves in its group without waiting
# for it is cut short (Homebrew's analytics ping, a curl it spawns and detaches: harmless, a ping lost).
# The group is recorded in the scratch directory until it is gone, so a step killed from outside kills it on
# exit too. bash 3.2 safe: macOS has no `timeout` nor `setsid`. A COMMAND given by absolute path that is not
# executable stops the step: the tool is missing.
bounded() {
  local limit=$1 pid watchdog status=0 monitor=0 running grace
  shift
  if [[ "$1" == /* && ! -x "$1" ]]; then
    die "the tool $1 is missing or not executable: install it, or set its blumeops:tools.* path"
  fi
  blumeops_scratch
  running=$BLUMEOPS_SCRATCH
  [[ $- != *m* ]] || monitor=1
  set -m
  "$@" </dev/null 9>&- &
  pid=$!
  : >"$running/group.$pid" 2>/dev/null || true
  # The watchdog is a process group of its own too, ended by one KILL of the group whatever it is doing: a TERM
  # sent to a subshell that has only just forked can be lost (bash resets its traps there), and the step then
  # waited out the whole bound after a tool that had already exited (every thirty or so fast calls on a loaded
  # machine). fired.PID says the bound ran out (written before the kill; gone again when the group had ended).
  (
    sleep "$limit"
    : >"$running/fired.$pid" 2>/dev/null || true
    kill -TERM -- "-$pid" 2>/dev/null || {
      rm -f "$running/fired.$pid"
      exit 0
    }
    sleep 2
    kill -KILL -- "-$pid" 2>/dev/null || true
  ) </dev/null >/dev/null 2>&1 9>&- &
  watchdog=$!
  ((monitor)) || set +m
  : >"$running/group.$watchdog" 2>/dev/null || true
  wait "$pid" || status=$?
  kill -KILL -- "-$watchdog" 2>/dev/null || true
  wait "$watchdog" 2>/dev/null || true
  if [[ -e "$running/fired.$pid" ]]; then
    kill -KILL -- "-$pid" 2>/dev/null || true # what of the group outlived its leader
    rm -f "$running/fired.$pid" "$running/group.$pid" "$running/group.$watchdog"
    die "\`$*\` did not finish within ${limit}s: killed; nothing was decided on its answer, the next run retries"
  fi
  # COMMAND is gone; what it left in its group goes too (the group's id stays taken while any of it lives)
  if kill -TERM -- "-$pid" 2>/dev/null; then
    grace=10
    while ((grace > 0)) && kill -0 -- "-$pid" 2>/dev/null; do
      sleep 0.1
      grace=$((grace - 1))
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$running/group.$pid" "$running/group.$watchdog"
  return "$status"
}

# legacy_stopped URL WHAT CHANGE: nothing answers at URL (curl: connection refused), so the legacy WHAT no longer
# runs; an answer, or a failure that tells neither, stops the step before CHANGE ("exported", "copied").
legacy_stopped() {
  local code status=0
  code=$(bounded "$BLUMEOPS_QUICK" "$CURL" -sS -o /dev/null -w '%{http_code}' --max-time 10 "$1" 2>/dev/null) ||
    status=$?
  case "$status" in
  0) die "a server answers at $1 (HTTP $code): $2 still runs; stop it first (its retirement step runs before" \
    "this one); nothing was $3" ;;
  7) return 0 ;;
  *) die "\`curl $1\` neither answered nor was refused (curl exit $status): cannot tell whether $2 still runs;" \
    "nothing was $3" ;;
  esac
}

# require_rsync_3: RSYNC is rsync 3.x (macOS's /usr/bin/rsync is openrsync or 2.6.9, without --partial-dir,
# --chmod and the itemized output the copies read).
require_rsync_3() {
  local version
  version=$(bounded "$BLUMEOPS_QUICK" "$RSYNC" --version 2>&1) ||
    die "\`$RSYNC --version\` failed: set blumeops:tools.rsync to Homebrew's rsync (brew install rsync)"
  version=${version%%$'\n'*}
  [[ "$version" =~ ^rsync\ +version\ v?3\. ]] || die "$RSYNC is '$version', not rsync 3: set blumeops:tools.rsync" \
    "to Homebrew's rsync (brew install rsync; /opt/homebrew/bin/rsync); nothing was copied"
}

# same_content PATH TEXT: PATH is a file holding exactly TEXT and a final newline.
same_content() {
  [[ -f "$1" ]] && printf '%s\n' "$2" | cmp -s - "$1"
}

ensure_dir() {
  if [[ ! -d "$1" ]]; then
    mkdir -p "$1" || die "cannot create the directory $1 (read-only, full, or not writable)"
  fi
}

# adoption_record PATH: where the program notes that it owns PATH (PATH.managed) and keeps the file that
# was at PATH before it first wrote there (PATH.orig). Kept in ~/.blumeops/adopted, never beside PATH
# (launchd would read a second plist in ~/Library/LaunchAgents; file sync would copy it into the node).
adoption_record() {
  local name=${1//[%]/%25} home=${HOME:-}
  name=${name//\//%2F}
  [[ -n "$home" ]] || home=$(cd ~ && pwd) || die "cannot find this user's home directory"
  printf '%s/.blumeops/adopted/%s' "$home" "$name"
}

# adopt_file PATH: before the program first writes PATH: a file already there (the program did not write it:
# a pre-existing install, the operator's own) is copied to the adoption record, which release_file restores.
adopt_file() {
  local record
  record=$(adoption_record "$1")
  [[ ! -e "$record.managed" ]] || return 0
  ensure_dir "$(dirname "$record")"
  rm -f "$record.restored" || die "cannot remove $record.restored"
  if [[ (-e "$1" || -L "$1") && ! -e "$record.orig" ]]; then
    cp -pP "$1" "$record.orig.tmp" || die "cannot back up $1 to $record.orig (full or read-only?); nothing changed"
    mv -f "$record.orig.tmp" "$record.orig" || die "cannot back up $1 to $record.orig; nothing changed"
    log "backed up $1 (not written by blumeops) to $record.orig: deleting this step restores it"
  fi
  : >"$record.managed" || die "cannot write $record.managed (full or read-only?); nothing changed"
}

# release_file PATH: remove PATH; when adopt_file backed up what was there before, put that back instead
# (PATH.restored then says so, and a second release leaves the restored file alone).
release_file() {
  local record
  record=$(adoption_record "$1")
  [[ ! -e "$record.restored" ]] || return 0
  if [[ -e "$record.orig" || -L "$record.orig" ]]; then
    : >"$record.restored" || die "cannot write $record.restored (full or read-only?); $1 is left as it was"
    mv -f "$record.orig" "$1" || die "cannot restore $1 from $record.orig; the next run retries"
    log "restored $1 (the file that was there before blumeops)"
  else
    remove_file "$1"
  fi
  rm -f "$record.managed" || die "cannot remove $record.managed"
}

# disown_file PATH: the program no longer owns PATH, which it shared with the user (it took its own lines out),
# and leaves it as it is now: the adoption record goes, and with it the copy of what was there before.
disown_file() {
  local record
  record=$(adoption_record "$1")
  rm -f "$record.managed" "$record.orig" "$record.restored" || die "cannot remove the adoption record $record"
}

# is_adopted PATH: the program wrote PATH (adopt_file ran for it and release_file has not).
is_adopted() {
  [[ -e "$(adoption_record "$1").managed" ]]
}

# release_own_file PATH TEXT: release_file PATH when the program wrote it (adopted, or holding exactly TEXT,
# as a version of the program from before adoption records wrote it); any other file there is left alone.
release_own_file() {
  if is_adopted "$1" || same_content "$1" "$2"; then
    release_file "$1"
  elif [[ -e "$1" || -L "$1" ]]; then
    log "left $1 alone: blumeops did not write it"
  fi
}

# staged_path PATH: where stage_file puts the next version of PATH (same directory, so mv is a rename;
# same extension, so tools that pick a parser by extension read it right).
staged_path() {
  printf '%s/.blumeops-new-%s' "$(dirname "$1")" "$(basename "$1")"
}

# stage_file PATH MODE TEXT: write TEXT to staged_path PATH with MODE; commit_file moves it into place.
# Every write is checked where it happens (a full or read-only file system stops the step, PATH untouched),
# and the staged file is read back: a short write is never committed.
stage_file() {
  local staged
  staged=$(staged_path "$1")
  ensure_dir "$(dirname "$1")"
  BLUMEOPS_TEMPS+=("$staged")
  rm -f "$staged" || die "cannot remove the stale $staged"
  (umask 077 && printf '%s\n' "$3" >"$staged") 2>/dev/null ||
    die "cannot write $staged (is $(dirname "$1") full or read-only?); $1 is left as it was"
  same_content "$staged" "$3" || die "writing $staged came out short (is $(dirname "$1") full?); $1 is left as it was"
  chmod "$2" "$staged" || die "cannot chmod $2 $staged; $1 is left as it was"
}

# stage_copy SOURCE PATH: copy the file SOURCE byte for byte, with its mode, to staged_path PATH (commit_file, or
# a checked mv, moves it into place); a failed or short copy stops the step, PATH untouched.
stage_copy() {
  local staged
  stage_file "$2" 0600 "" # the staged file, registered for removal on exit; cp -p then overwrites it
  staged=$(staged_path "$2")
  cp -p "$1" "$staged" 2>/dev/null || die "cannot copy $1 to $staged (is $(dirname "$2") full or read-only?); $2 is left as it was"
  cmp -s "$1" "$staged" || die "copying $1 to $staged came out short (is $(dirname "$2") full?); $2 is left as it was"
}

# commit_file PATH: move the staged version into place (atomically), adopting PATH first (adopt_file).
commit_file() {
  adopt_file "$1"
  mv -f "$(staged_path "$1")" "$1" || die "cannot replace $1 (read-only?); it is left as it was"
}

# replace_if_changed PATH MODE TEXT: replace PATH atomically with TEXT when its content differs.
# Succeeds when it wrote PATH, fails (status 1) when PATH already held TEXT: use it in an `if`. A failed
# write stops the step (die), also inside that `if`.
replace_if_changed() {
  if same_content "$1" "$3"; then
    return 1
  fi
  stage_file "$1" "$2" "$3"
  commit_file "$1"
}

# restart_marker PATH: the marker that says the job reading PATH still has to be restarted for its current
# content. It is written before PATH changes and removed only after a successful restart, so a restart that
# failed is retried by the next run although PATH then already holds the new content.
restart_marker() {
  printf '%s.blumeops-restart-pending' "$1"
}

# mark_restart_pending PATH: leave restart_marker PATH (call it before PATH is replaced).
mark_restart_pending() {
  local marker
  marker=$(restart_marker "$1")
  ensure_dir "$(dirname "$1")"
  : >"$marker" || die "cannot write $marker (full or read-only?); nothing changed"
}

# remove_file PATH: remove PATH if it exists.
remove_file() {
  if [[ -e "$1" || -L "$1" ]]; then
    rm -f "$1" || die "cannot remove $1 (read-only?); the next run retries"
    log "removed $1"
  fi
}

# remove_empty_dir DIR: remove DIR if it exists and is empty (never anything inside it).
remove_empty_dir() {
  if [[ -d "$1" ]] && [[ -z "$(ls -A "$1")" ]]; then
    rmdir "$1" || die "cannot remove the empty directory $1"
  fi
}

# agent_loaded LABEL: the LaunchAgent LABEL is loaded in GUI_DOMAIN.
agent_loaded() {
  bounded "$BLUMEOPS_QUICK" "$LAUNCHCTL" print "$GUI_DOMAIN/$1" >/dev/null 2>&1
}

# json_without_null FILE: FILE's JSON with every null replaced by "" (outside strings), printed to a scratch
# file whose path is printed. macOS's plutil refuses JSON holding null (no plist type for it); minikube's
# profile config and `tailscale serve status --json` hold nulls. /usr/bin/awk is on every Mac.
json_without_null() {
  local out
  out="$(blumeops_tmpdir)/$(basename "$1").no-null.json"
  awk '
    BEGIN { instr = 0; esc = 0 }
    {
      line = $0; n = length(line); res = ""; i = 1
      while (i <= n) {
        c = substr(line, i, 1)
        if (instr) {
          res = res c
          if (esc) esc = 0; else if (c == "\\") esc = 1; else if (c == "\"") instr = 0
          i++
        } else if (c == "\"") {
          res = res c; instr = 1; i++
        } else if (substr(line, i, 4) == "null") {
          res = res "\"\""; i += 4
        } else {
          res = res c; i++
        }
      }
      print res
    }' "$1" >"$out" || die "cannot read the JSON $1 (or write $out)"
  printf '%s' "$out"
}

# json_value FILE KEYPATH: print the scalar at KEYPATH (plutil keypath: dot-separated keys) of the JSON in
# FILE, or nothing when there is none (a null reads as nothing). plutil ships with macOS (no jq there).
json_value() {
  local clean
  clean=$(json_without_null "$1")
  bounded "$BLUMEOPS_QUICK" "$PLUTIL" -extract "$2" raw -o - "$clean" 2>/dev/null || true
}

# json_subtree FILE KEYPATH: the JSON under KEYPATH, compact, with JSON's optional '\/' escapes undone.
json_subtree() {
  local clean
  clean=$(json_without_null "$1")
  { bounded "$BLUMEOPS_QUICK" "$PLUTIL" -extract "$2" json -o - "$clean" 2>/dev/null || true; } | tr -d '\\\n '
}

# serve_status_file: a scratch file holding `tailscale serve status --json` (removed when the step exits).
serve_status_file() {
  local status
  status="$(blumeops_tmpdir)/serve-status.json"
  bounded "$BLUMEOPS_QUICK" "$TAILSCALE" serve status --json >"$status" ||
    die "\`tailscale serve status --json\` failed: is Tailscale running and logged in on this host?"
  # a cut-off answer (a full scratch disk) must not read as "no serve entry": it would lead to a change
  [[ "$(tr -d ' \t\r\n' <"$status" | head -c 1)" == "{" && "$(tr -d ' \t\r\n' <"$status" | tail -c 1)" == "}" ]] ||
    die "\`tailscale serve status --json\` gave no whole JSON object (is ${TMPDIR:-/tmp} full?); nothing changed"
  printf '%s' "$status"
}

# serve_clear SERVICE: drop every serve entry of SERVICE on this host (no-op when there is none).
serve_clear() {
  local status
  status=$(serve_status_file)
  if [[ -n "$(json_subtree "$status" "Services.$1")" ]]; then
    bounded "$BLUMEOPS_CHANGE" "$TAILSCALE" serve clear "$1" || die "\`tailscale serve clear $1\` failed"
    log "cleared the serve entries of $1"
  fi
}

# serve_tcp_forward STATUS_FILE SERVICE PORT: the TCP forward (host:port) SERVICE has on PORT, or nothing.
serve_tcp_forward() {
  json_value "$1" "Services.$2.TCP.$3.TCPForward"
}

# same_tcp_target FORWARD TARGET: FORWARD (host:port) is TARGET (tcp://host:port); 127.0.0.1 = localhost.
same_tcp_target() {
  local have=${1/#127.0.0.1:/localhost:} want=${2#tcp://}
  want=${want/#127.0.0.1:/localhost:}
  [[ -n "$have" && "$have" == "$want" ]]
}

# tree_content_tag DIR: the content tag of the files under DIR (a scratch directory): sha256 over relative path,
# NUL, size, NUL and bytes of every regular file, in the byte order of the paths (LC_ALL=C), its first 16 hex
# digits: what components/host/devpi_image.py's content_tag computes over the same files. Anything under DIR that
# is neither a file nor a directory (a link, a socket), or a name holding a newline, stops the step: the tag would
# not say what a build copies.
tree_content_tag() {
  local dir=$1 scratch list stream path size sum odd
  scratch="$(blumeops_tmpdir)/tag.${dir##*/}"
  list="$scratch.list" stream="$scratch.stream"
  odd=$(cd "$dir" && find . ! -type f ! -type d -print -o -name "*"$'\n'"*" -print | head -n 1) ||
    die "cannot read $dir"
  [[ -z "$odd" ]] || die "$dir/${odd#./} is not a plain file or directory (or its name holds a newline); nothing was built"
  (cd "$dir" && find . -type f) | LC_ALL=C sort >"$list" || die "cannot list $dir (is ${TMPDIR:-/tmp} full?)"
  : >"$stream" || die "cannot write $stream (is ${TMPDIR:-/tmp} full?)"
  while IFS= read -r path; do
    path=${path#./}
    size=$(wc -c <"$dir/$path" | tr -d ' ') || die "cannot read $dir/$path"
    { printf '%s\0%s\0' "$path" "$size" && cat "$dir/$path"; } >>"$stream" ||
      die "cannot write $stream (is ${TMPDIR:-/tmp} full?)"
  done <"$list"
  sum=$(bounded "$BLUMEOPS_CHANGE" "$SHASUM" -a 256 "$stream") || die "\`shasum -a 256\` failed"
  rm -f "$list" "$stream"
  printf '%s' "${sum:0:16}"
}

# write_image_context DIR: the build context of the preamble (FILE_COUNT, FILE_<n>_NAME, FILE_<n>_TEXT) as files of DIR.
write_image_context() {
  local dir=$1 index name text
  mkdir -p "$dir" || die "cannot create the build context $dir (is ${TMPDIR:-/tmp} full?)"
  for ((index = 1; index <= FILE_COUNT; index++)); do
    name="FILE_${index}_NAME" text="FILE_${index}_TEXT"
    [[ "${!name}" =~ ^[A-Za-z0-9._-]+$ ]] || die "the context file name '${!name}' is not a plain file name"
    printf '%s' "${!text}" >"$dir/${!name}" 2>/dev/null ||
      die "cannot write $dir/${!name} (is ${TMPDIR:-/tmp} full or read-only?); nothing was built"
  done
}

# registry_status PATH: the HTTP status of a HEAD of REGISTRY's /v2/PATH (curl --head: with -X HEAD curl would
# wait for the body the Content-Length announces); a registry that does not answer stops the step (nothing is
# decided on a missing answer).
registry_status() {
  local code
  code=$(bounded "$BLUMEOPS_QUICK" "$CURL" -sS -o /dev/null -w '%{http_code}' --max-time 30 --head \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -H 'Accept: application/vnd.oci.image.index.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
    "http://$REGISTRY/v2/$1") || die "the registry at http://$REGISTRY does not answer (is it running?); nothing was built"
  printf '%s' "$code"
}

# push_blob LAYOUT DIGEST: upload the blob DIGEST of the OCI layout LAYOUT to REGISTRY's REPOSITORY, unless it is there.
push_blob() {
  local layout=$1 digest=$2 file code location headers
  file="$layout/blobs/${digest/://}"
  [[ -f "$file" ]] || die "the saved image has no blob $digest (docker save wrote an incomplete layout)"
  code=$(registry_status "$REPOSITORY/blobs/$digest")
  [[ "$code" != 200 ]] || return 0
  headers="$(blumeops_tmpdir)/upload-headers"
  code=$(bounded "$BLUMEOPS_QUICK" "$CURL" -sS -o /dev/null -D "$headers" -w '%{http_code}' --max-time 30 \
    -X POST "http://$REGISTRY/v2/$REPOSITORY/blobs/uploads/") || die "starting the upload of $digest failed"
  [[ "$code" == 202 ]] || die "the registry refused to start the upload of $digest (HTTP $code)"
  location=$(tr -d '\r' <"$headers" | sed -n 's/^[Ll]ocation: *//p' | tail -n 1)
  [[ -n "$location" ]] || die "the registry gave no upload location for $digest"
  [[ "$location" == http* ]] || location="http://$REGISTRY$location"
  if [[ "$location" == *\?* ]]; then
    location="$location&digest=$digest"
  else
    location="$location?digest=$digest"
  fi
  code=$(bounded "$BLUMEOPS_CHANGE" "$CURL" -sS -o /dev/null -w '%{http_code}' --max-time 110 -X PUT \
    -H 'Content-Type: application/octet-stream' --data-binary "@$file" "$location") ||
    die "uploading $digest failed"
  [[ "$code" == 201 ]] || die "the registry refused the blob $digest (HTTP $code)"
}

# push_layout LAYOUT TAG: push the image of an OCI image layout (docker save) as REPOSITORY:TAG (REGISTRY,
# REPOSITORY, PLATFORM, CURL, JQ from the preamble), then read the tag back: its digest is the pushed manifest's.
push_layout() {
  local layout=$1 tag=$2 media digest file code pushed blob
  [[ -f "$layout/index.json" ]] ||
    die "docker save wrote no OCI image layout (index.json): Docker 25 or newer is needed; nothing was pushed"
  media=$(bounded "$BLUMEOPS_QUICK" "$JQ" -r '.manifests[0].mediaType' "$layout/index.json") ||
    die "cannot read $layout/index.json"
  digest=$(bounded "$BLUMEOPS_QUICK" "$JQ" -r '.manifests[0].digest' "$layout/index.json")
  file="$layout/blobs/${digest/://}"
  if [[ "$media" == application/vnd.oci.image.index.v1+json ]]; then
    # the containerd image store saves an index: the platform's manifest is the image
    # shellcheck disable=SC2016  # $os and $arch are jq's variables
    digest=$(bounded "$BLUMEOPS_QUICK" "$JQ" -r --arg os "${PLATFORM%%/*}" --arg arch "${PLATFORM#*/}" \
      '[.manifests[] | select(.platform.os == $os and .platform.architecture == $arch)][0].digest' "$file")
    media=application/vnd.oci.image.manifest.v1+json
    file="$layout/blobs/${digest/://}"
  fi
  [[ -f "$file" && "$media" == application/vnd.oci.image.manifest.v1+json ]] ||
    die "the saved image has no $PLATFORM manifest (index.json: $media $digest); nothing was pushed"
  while IFS= read -r blob; do
    push_blob "$layout" "$blob"
  done < <(bounded "$BLUMEOPS_QUICK" "$JQ" -r '.config.digest, .layers[].digest' "$file")
  code=$(bounded "$BLUMEOPS_CHANGE" "$CURL" -sS -o /dev/null -w '%{http_code}' --max-time 60 -X PUT \
    -H "Content-Type: $media" --data-binary "@$file" "http://$REGISTRY/v2/$REPOSITORY/manifests/$tag") ||
    die "pushing the manifest of $REPOSITORY:$tag failed"
  [[ "$code" == 201 ]] || die "the registry refused the manifest of $REPOSITORY:$tag (HTTP $code)"
  pushed=$(bounded "$BLUMEOPS_QUICK" "$CURL" -sS -I --max-time 30 -H "Accept: $media" \
    "http://$REGISTRY/v2/$REPOSITORY/manifests/$tag" | tr -d '\r' |
    sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p')
  [[ "$pushed" == "$digest" ]] ||
    die "$REPOSITORY:$tag reads back as '${pushed:-nothing}', not the pushed $digest"
}

# build_push_image CONTEXT TAG: unless REGISTRY has REPOSITORY:TAG already (then nothing is built), build the
# directory CONTEXT for PLATFORM with Docker Desktop's docker (`buildx build --load`), `docker save` it as an OCI
# layout beside CONTEXT and push that with curl from the host (Docker Desktop's daemon runs in a VM whose localhost
# is not the host's: it cannot reach the registry on the host's loopback). DOCKER, TAR and the preamble of
# push_layout.
build_push_image() {
  local context=$1 tag=$2 code local_ref
  code=$(registry_status "$REPOSITORY/manifests/$tag")
  if [[ "$code" == 200 ]]; then
    log "$REGISTRY/$REPOSITORY:$tag is already in the registry: nothing to build or push"
    return 0
  fi
  [[ "$code" == 404 ]] || die "the registry answered HTTP $code for $REPOSITORY:$tag; nothing was built"
  bounded "$BLUMEOPS_QUICK" "$DOCKER" info >/dev/null 2>&1 ||
    die "Docker Desktop is not running (\`docker info\` failed): start it (it needs the GUI session), then re-run"
  local_ref="$REPOSITORY:$tag"
  log "building $local_ref for $PLATFORM"
  bounded "$BLUMEOPS_LONG" "$DOCKER" buildx build --platform "$PLATFORM" --provenance=false --sbom=false --load \
    --tag "$local_ref" "$context" >&2 ||
    die "\`docker buildx build\` of $local_ref failed (its output is above); nothing was pushed"
  bounded "$BLUMEOPS_CHANGE" "$DOCKER" save --output "$context.tar" "$local_ref" >&2 ||
    die "\`docker save $local_ref\` failed; nothing was pushed"
  mkdir -p "$context.layout" || die "cannot create $context.layout"
  bounded "$BLUMEOPS_CHANGE" "$TAR" -xf "$context.tar" -C "$context.layout" ||
    die "cannot unpack the saved image (is ${TMPDIR:-/tmp} full?); nothing was pushed"
  push_layout "$context.layout" "$tag"
  log "pushed $REGISTRY/$REPOSITORY:$tag"
}

run_action() {
  local action=${1:-}
  [[ -n "$action" ]] || die "no action given: run as bash -s -- create|delete"
  declare -F "step_$action" >/dev/null || die "unknown action '$action' for this step"
  "step_$action"
}
