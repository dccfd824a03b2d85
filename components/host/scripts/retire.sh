# ---- components/host/scripts/retire.sh: retire a legacy service on the host; delete restores it ----
# create: before changing anything, record under STATE_DIR what the host runs (once: a later run keeps the
#         first record): the brew service's status, or whether the LaunchAgent is loaded, and the serve entry
#         of SERVE_SERVICE exactly as `tailscale serve status --json` shows it, with the `tailscale serve`
#         calls that recreate it (an entry this step could not recreate is refused before anything stops).
#         Then stop the service (`brew services stop`, or bootout + the plist moved into STATE_DIR) and clear
#         the serve entry. Prints the record as JSON (the step's stdout). A second run changes nothing.
# delete: from the record: start the brew service again (`brew services start`), or put the plist back and
#         bootstrap it, then recreate the serve entry and check it is byte for byte the recorded one; then
#         remove the record. Without a record (never retired, or already restored) it says so and does nothing.
# Tools never read the script's stdin (bash -s reads the rest of this text from it) and print on stderr: stdout
# carries only the record.
# Bash clears `set -e` inside $(...): a function that runs in one checks every call it makes. Every external
# call is bounded (lib.sh): a hang stops the step, it is never read as "stopped" or "no serve entry".
# Preamble: KIND (brew|agent) NAME (the formula, or the agent's label) PLIST_PATH (agent) BREW (brew)
#           STATE_DIR SERVE_SERVICE (svc:<name>, or empty: no serve entry) GUI_DOMAIN LAUNCHCTL TAILSCALE PLUTIL

readonly RECORD="$STATE_DIR/record"           # "<kind> <name> <state when retired>"
readonly SAVED_PLIST="$STATE_DIR/agent.plist" # the agent's plist, moved aside
readonly SAVED_SERVE="$STATE_DIR/serve.json"  # the serve entry (compact JSON); absent: there was none
readonly SERVE_PLAN="$STATE_DIR/serve.plan"   # "<flag> <port> <target>" per `tailscale serve` call

SERVE_STATUS="" # the scratch file of the last read_serve_status

case "$KIND" in
brew) readonly WHAT="brew service $NAME" ;;
agent) readonly WHAT="LaunchAgent $NAME" ;;
*) die "unknown kind of legacy service '$KIND' (brew or agent)" ;;
esac

require_tool() {
  [[ -x "$1" ]] || die "$2 is not at $1: install it or set blumeops:tools.$3 to its absolute path"
}

# ---- the service ----------------------------------------------------------------------------------------

brew_cellar() {
  bounded "$BLUMEOPS_QUICK" "$BREW" --cellar || die "\`$BREW --cellar\` failed: is Homebrew working on this host?"
}

# brew_status: started, scheduled, stopped, none, error, ... as `brew services info` says; "absent" when the
# formula is not installed (then nothing of it can run).
brew_status() {
  local cellar status info
  cellar=$(brew_cellar) || exit 1
  if [[ ! -d "$cellar/$NAME" ]]; then
    printf 'absent'
    return 0
  fi
  info="$(blumeops_tmpdir)/brew-info.json"
  bounded "$BLUMEOPS_QUICK" "$BREW" services info --json "$NAME" >"$info" ||
    die "\`brew services info --json $NAME\` failed (or ${TMPDIR:-/tmp} is full)"
  status=$(json_value "$info" 0.status)
  [[ -n "$status" ]] || die "\`brew services info --json $NAME\` printed no status"
  printf '%s' "$status"
}

brew_stopped() {
  [[ "$1" == none || "$1" == stopped || "$1" == absent ]]
}

agent_state() {
  if agent_loaded "$NAME"; then
    printf 'loaded'
  elif [[ -f "$PLIST_PATH" ]]; then
    printf 'unloaded'
  else
    printf 'absent'
  fi
}

service_state() {
  if [[ "$KIND" == brew ]]; then brew_status; else agent_state; fi
}

stop_service() {
  local status
  if [[ "$KIND" == brew ]]; then
    status=$(brew_status)
    if brew_stopped "$status"; then
      log "$WHAT is already stopped ($status)"
      return 0
    fi
    bounded "$BLUMEOPS_CHANGE" "$BREW" services stop "$NAME" >&2 || die "\`brew services stop $NAME\` failed"
    status=$(brew_status)
    brew_stopped "$status" || die "$WHAT is '$status' after \`brew services stop $NAME\`"
    log "stopped $WHAT (brew services stop: it stays stopped after a reboot)"
    return 0
  fi
  if agent_loaded "$NAME"; then
    bounded "$BLUMEOPS_CHANGE" "$LAUNCHCTL" bootout "$GUI_DOMAIN/$NAME" >&2 || die "launchctl bootout $GUI_DOMAIN/$NAME failed"
    log "unloaded $WHAT"
  fi
  if [[ -f "$PLIST_PATH" ]]; then
    if [[ ! -f "$SAVED_PLIST" ]]; then
      # copied (checked) and committed before the original goes: a full or read-only STATE_DIR stops here
      stage_copy "$PLIST_PATH" "$SAVED_PLIST"
      commit_file "$SAVED_PLIST"
      remove_file "$PLIST_PATH"
      log "moved $PLIST_PATH to $SAVED_PLIST (launchd no longer loads it at login)"
    elif cmp -s "$PLIST_PATH" "$SAVED_PLIST"; then
      remove_file "$PLIST_PATH"
      log "removed $PLIST_PATH again (the same plist is kept at $SAVED_PLIST)"
    else
      die "$PLIST_PATH came back and differs from the plist kept at $SAVED_PLIST since the first retirement:" \
        "decide which one to keep (move it to $SAVED_PLIST, or delete $PLIST_PATH) and run again"
    fi
  fi
  ! agent_loaded "$NAME" || die "$WHAT is still loaded after bootout"
}

start_service() {
  local was=$1 status
  if [[ "$KIND" == brew ]]; then
    if brew_stopped "$was"; then
      log "$WHAT was $was when it was retired: left as it is"
      return 0
    fi
    status=$(brew_status)
    [[ "$status" != absent ]] || die "$NAME is no longer installed: \`brew install $NAME\`, then run again"
    if brew_stopped "$status"; then
      bounded "$BLUMEOPS_CHANGE" "$BREW" services start "$NAME" >&2 || die "\`brew services start $NAME\` failed"
      status=$(brew_status)
      ! brew_stopped "$status" || die "$WHAT is '$status' after \`brew services start $NAME\`"
      log "started $WHAT again"
    else
      log "$WHAT is already $status"
    fi
    return 0
  fi
  if [[ -f "$SAVED_PLIST" ]]; then
    if [[ ! -f "$PLIST_PATH" ]]; then
      stage_copy "$SAVED_PLIST" "$PLIST_PATH"
      mv -f "$(staged_path "$PLIST_PATH")" "$PLIST_PATH" ||
        die "cannot put $PLIST_PATH back (read-only?); it stays at $SAVED_PLIST, the next run retries"
      log "put $PLIST_PATH back"
      release_file "$SAVED_PLIST"
    elif cmp -s "$PLIST_PATH" "$SAVED_PLIST"; then
      release_file "$SAVED_PLIST"
    else
      die "$PLIST_PATH exists and differs from the plist kept at $SAVED_PLIST: decide which one to keep" \
        "(delete one of them) and run again"
    fi
  fi
  if [[ "$was" != loaded ]]; then
    log "$WHAT was $was when it was retired: not loading it"
    return 0
  fi
  if ! agent_loaded "$NAME"; then
    [[ -f "$PLIST_PATH" ]] || die "$WHAT was loaded when retired but $PLIST_PATH is gone: restore it, then run again"
    bounded "$BLUMEOPS_CHANGE" "$LAUNCHCTL" bootstrap "$GUI_DOMAIN" "$PLIST_PATH" >&2 ||
      die "launchctl bootstrap $GUI_DOMAIN $PLIST_PATH failed (the gui domain exists only while the user is logged in)"
    log "loaded $WHAT again"
  fi
  agent_loaded "$NAME" || die "$WHAT is not loaded after bootstrap"
}

# ---- the serve entry ------------------------------------------------------------------------------------

# read_serve_status: SERVE_STATUS is a scratch file with `tailscale serve status --json` (bounded, a whole
# JSON object: serve_status_file of lib.sh).
read_serve_status() {
  SERVE_STATUS=$(serve_status_file)
}

serve_entry() {
  json_subtree "$SERVE_STATUS" "Services.$SERVE_SERVICE"
}

cannot_recreate() {
  die "the serve entry of $SERVE_SERVICE has $1, which this step could not recreate on rollback;" \
    "nothing was changed. See \`tailscale serve status --json\`: simplify the entry (one proxy per web port)" \
    "or clear it yourself (\`tailscale serve clear $SERVE_SERVICE\`), then run again"
}

# web_proxy WEB PORT: the target of the web server on PORT of WEB (the entry's "Web" object), which must have
# exactly one handler, "/", proxying to it.
web_proxy() {
  local pattern="\"[^\"]*:$2\":\\{\"Handlers\":\\{\"/\":\\{\"Proxy\":\"([^\"]*)\"\\}\\}\\}"
  [[ "$1" =~ $pattern ]] || cannot_recreate "a web server on port $2 that is not a single proxy on /"
  printf '%s' "${BASH_REMATCH[1]}"
}

# serve_plan: the `tailscale serve --service` calls ("<flag> <port> <target>") that recreate the entry read by
# read_serve_status; refuses what they could not recreate.
serve_plan() {
  local key="Services.$SERVE_SERVICE" tcp web port rest https http forward terminate target webs=0 servers
  [[ -z "$(json_value "$SERVE_STATUS" "$key.Tun")" ]] || cannot_recreate "Tun mode"
  tcp=$(json_subtree "$SERVE_STATUS" "$key.TCP")
  web=$(json_subtree "$SERVE_STATUS" "$key.Web")
  for port in $(printf '%s' "$tcp" | grep -oE '"[0-9]+":\{' | tr -dc '0-9\n'); do
    rest=$(json_subtree "$SERVE_STATUS" "$key.TCP.$port" |
      sed -E 's/"(HTTPS|HTTP)":(true|false)//g; s/"(TCPForward|TerminateTLS)":"[^"]*"//g; s/[{},]//g')
    [[ -z "$rest" ]] || cannot_recreate "port $port with settings $rest"
    https=$(json_value "$SERVE_STATUS" "$key.TCP.$port.HTTPS")
    http=$(json_value "$SERVE_STATUS" "$key.TCP.$port.HTTP")
    forward=$(json_value "$SERVE_STATUS" "$key.TCP.$port.TCPForward")
    terminate=$(json_value "$SERVE_STATUS" "$key.TCP.$port.TerminateTLS")
    if [[ -n "$forward" && -n "$terminate" ]]; then
      printf 'tls-terminated-tcp %s tcp://%s\n' "$port" "$forward"
    elif [[ -n "$forward" ]]; then
      printf 'tcp %s tcp://%s\n' "$port" "$forward"
    elif [[ "$https" == true || "$http" == true ]]; then
      target=$(web_proxy "$web" "$port") || exit 1
      if [[ "$https" == true ]]; then printf 'https %s %s\n' "$port" "$target"; else printf 'http %s %s\n' "$port" "$target"; fi
      webs=$((webs + 1))
    else
      cannot_recreate "port $port without a forward or a web server"
    fi
  done
  servers=$(printf '%s' "$web" | grep -o '"Handlers":' | grep -c . || true)
  [[ "$servers" == "$webs" ]] || cannot_recreate "$servers web servers for $webs web ports"
}

clear_serve() {
  bounded "$BLUMEOPS_CHANGE" "$TAILSCALE" serve clear "$SERVE_SERVICE" >&2 || die "\`tailscale serve clear $SERVE_SERVICE\` failed"
  log "cleared the serve entry of $SERVE_SERVICE"
}

restore_serve() {
  local saved current flag port target
  if [[ ! -f "$SAVED_SERVE" ]]; then
    log "$SERVE_SERVICE had no serve entry when it was retired: nothing to serve again"
    return 0
  fi
  saved=$(cat "$SAVED_SERVE")
  read_serve_status
  current=$(serve_entry)
  if [[ "$current" == "$saved" ]]; then
    log "$SERVE_SERVICE is already served as recorded"
    return 0
  fi
  if [[ -n "$current" ]]; then
    log "$SERVE_SERVICE is served differently from the record ($current): clearing it to restore the record"
    clear_serve
  fi
  while read -r flag port target; do
    [[ -n "$flag" ]] || continue
    bounded "$BLUMEOPS_CHANGE" "$TAILSCALE" serve --service="$SERVE_SERVICE" --"$flag"="$port" "$target" >&2 ||
      die "\`tailscale serve --service=$SERVE_SERVICE --$flag=$port $target\` failed: the Tailscale Service" \
        "$SERVE_SERVICE must exist again (the release of its name is rolled back before this step)"
  done <"$SERVE_PLAN"
  read_serve_status
  current=$(serve_entry)
  [[ "$current" == "$saved" ]] ||
    die "$SERVE_SERVICE is served as $current after the restore, not as recorded ($saved); check with" \
      "\`tailscale serve status --json\`. When the difference is fine, delete $SAVED_SERVE and run again"
  log "served $SERVE_SERVICE again as recorded"
}

# ---- the record -----------------------------------------------------------------------------------------

write_record() {
  local state=$1 entry="" plan
  ensure_dir "$STATE_DIR"
  chmod 0700 "$STATE_DIR" || die "cannot chmod 0700 $STATE_DIR (read-only?)"
  if [[ -n "$SERVE_SERVICE" ]]; then
    entry=$(serve_entry)
    if [[ -n "$entry" ]]; then
      plan=$(serve_plan)
      stage_file "$SERVE_PLAN" 0600 "$plan"
      commit_file "$SERVE_PLAN"
      stage_file "$SAVED_SERVE" 0600 "$entry"
      commit_file "$SAVED_SERVE"
    fi
  fi
  # written last: a record means everything it refers to was saved
  stage_file "$RECORD" 0600 "$KIND $NAME $state"
  commit_file "$RECORD"
  log "recorded $WHAT as $state${entry:+ and the serve entry of $SERVE_SERVICE} in $STATE_DIR"
}

print_record() {
  local kind name state serve=null
  read -r kind name state <"$RECORD"
  [[ ! -f "$SAVED_SERVE" ]] || serve=$(cat "$SAVED_SERVE")
  printf '{"kind":"%s","name":"%s","state":"%s","serveService":"%s","serveEntry":%s}\n' \
    "$kind" "$name" "$state" "$SERVE_SERVICE" "$serve"
}

check_tools() {
  if [[ "$KIND" == brew ]]; then require_tool "$BREW" Homebrew brew; else require_tool "$LAUNCHCTL" launchctl launchctl; fi
  [[ -z "$SERVE_SERVICE" ]] || require_tool "$TAILSCALE" "the tailscale CLI" tailscale
}

step_create() {
  local state
  check_tools
  [[ -z "$SERVE_SERVICE" ]] || read_serve_status
  if [[ -f "$RECORD" ]]; then
    log "$WHAT was retired before (record in $STATE_DIR): keeping that record"
  else
    state=$(service_state)
    write_record "$state"
  fi
  stop_service
  if [[ -n "$SERVE_SERVICE" && -n "$(serve_entry)" ]]; then
    clear_serve
    read_serve_status
    [[ -z "$(serve_entry)" ]] || die "$SERVE_SERVICE still has a serve entry after \`tailscale serve clear\`"
  fi
  print_record
}

step_delete() {
  local kind name state
  if [[ ! -f "$RECORD" ]]; then
    log "no record in $STATE_DIR: $WHAT was not retired by this step, or is restored already; nothing to do"
    return 0
  fi
  check_tools
  read -r kind name state <"$RECORD"
  [[ "$kind $name" == "$KIND $NAME" ]] || die "$RECORD is about $kind $name, not $WHAT: remove it by hand"
  start_service "$state"
  [[ -z "$SERVE_SERVICE" ]] || restore_serve
  # written with commit_file, so undone with release_file (which also drops their adoption records)
  release_file "$RECORD"
  release_file "$SAVED_SERVE"
  release_file "$SERVE_PLAN"
  remove_empty_dir "$STATE_DIR"
  log "restored $WHAT"
}

run_action "$@"
