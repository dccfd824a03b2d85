# ---- components/host/scripts/lib.sh: helpers shared by every blumeops host step and agent script ----
set -euo pipefail
umask 022

log() { printf 'blumeops[%s]: %s\n' "$STEP" "$*" >&2; }
die() {
  printf 'blumeops[%s]: ERROR: %s\n' "$STEP" "$*" >&2
  exit 1
}

# Temp files of this run, removed on exit whatever happens (nothing half written stays behind).
BLUMEOPS_TEMPS=()
cleanup_temps() {
  local temp
  for temp in "${BLUMEOPS_TEMPS[@]+"${BLUMEOPS_TEMPS[@]}"}"; do
    rm -f "$temp"
  done
}
trap cleanup_temps EXIT

# same_content PATH TEXT: PATH is a file holding exactly TEXT and a final newline.
same_content() {
  [[ -f "$1" ]] && printf '%s\n' "$2" | cmp -s - "$1"
}

ensure_dir() {
  [[ -d "$1" ]] || mkdir -p "$1"
}

# staged_path PATH: where stage_file puts the next version of PATH (same directory, so mv is a rename;
# same extension, so tools that pick a parser by extension read it right).
staged_path() {
  printf '%s/.blumeops-new-%s' "$(dirname "$1")" "$(basename "$1")"
}

# stage_file PATH MODE TEXT: write TEXT to staged_path PATH with MODE; commit_file moves it into place.
stage_file() {
  local staged
  staged=$(staged_path "$1")
  ensure_dir "$(dirname "$1")"
  BLUMEOPS_TEMPS+=("$staged")
  rm -f "$staged"
  (umask 077 && printf '%s\n' "$3" >"$staged")
  chmod "$2" "$staged"
}

commit_file() {
  mv -f "$(staged_path "$1")" "$1"
}

# replace_if_changed PATH MODE TEXT: replace PATH atomically with TEXT when its content differs.
# Succeeds when it wrote PATH, fails (status 1) when PATH already held TEXT: use it in an `if`.
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
  ensure_dir "$(dirname "$1")"
  : >"$(restart_marker "$1")"
}

# remove_file PATH: remove PATH if it exists.
remove_file() {
  if [[ -e "$1" || -L "$1" ]]; then
    rm -f "$1"
    log "removed $1"
  fi
}

# remove_empty_dir DIR: remove DIR if it exists and is empty (never anything inside it).
remove_empty_dir() {
  if [[ -d "$1" ]] && [[ -z "$(ls -A "$1")" ]]; then
    rmdir "$1"
  fi
}

# agent_loaded LABEL: the LaunchAgent LABEL is loaded in GUI_DOMAIN.
agent_loaded() {
  "$LAUNCHCTL" print "$GUI_DOMAIN/$1" >/dev/null 2>&1
}

# json_value FILE KEYPATH: print the value at KEYPATH (plutil keypath: dot-separated keys) of the JSON in
# FILE, or nothing. plutil reads JSON as well as plists and ships with macOS (no jq there).
json_value() {
  "$PLUTIL" -extract "$2" raw -o - "$1" 2>/dev/null || true
}

# json_subtree FILE KEYPATH: the JSON under KEYPATH, compact, with JSON's optional '\/' escapes undone.
json_subtree() {
  { "$PLUTIL" -extract "$2" json -o - "$1" 2>/dev/null || true; } | tr -d '\\\n '
}

# serve_status_file: a temp file holding `tailscale serve status --json`.
serve_status_file() {
  local status
  status=$(mktemp "${TMPDIR:-/tmp}/blumeops-serve.XXXXXX")
  BLUMEOPS_TEMPS+=("$status")
  "$TAILSCALE" serve status --json >"$status" || die "\`tailscale serve status --json\` failed: is Tailscale running and logged in on this host?"
  printf '%s' "$status"
}

# serve_clear SERVICE: drop every serve entry of SERVICE on this host (no-op when there is none).
serve_clear() {
  local status
  status=$(serve_status_file)
  if [[ -n "$(json_subtree "$status" "Services.$1")" ]]; then
    "$TAILSCALE" serve clear "$1" || die "\`tailscale serve clear $1\` failed"
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

run_action() {
  local action=${1:-}
  [[ -n "$action" ]] || die "no action given: run as bash -s -- create|delete"
  declare -F "step_$action" >/dev/null || die "unknown action '$action' for this step"
  "step_$action"
}
