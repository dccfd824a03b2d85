# ---- components/host/scripts/retire.sh: retire a legacy service on the host; delete restores it ----
# create: before changing anything, record under STATE_DIR what the host runs (once: a later run keeps the
#         first record): the brew service as `brew services info --json` reads it (status, loaded,
#         registered) with its installed plist kept byte for byte, or the LaunchAgent's domain (gui/<uid>
#         or user/<uid>: ansible may have loaded it either way), and the serve entry of SERVE_SERVICE exactly
#         as `tailscale serve status --json` shows it, with the `tailscale serve` calls that recreate it (an
#         entry this step could not recreate is refused before anything stops). Then stop the service
#         (`brew services stop` whenever it is loaded or registered, which unloads it and removes its plist
#         from ~/Library/LaunchAgents; or bootout + the plist moved into STATE_DIR) and clear the serve
#         entry. A brew service owned by root (`sudo brew services start`: its plist in
#         /Library/LaunchDaemons, loaded in the system domain) is refused with the commands to take: this
#         step runs as the user. Prints the record as JSON (the step's stdout). A second run changes nothing.
# delete: from the record: a brew service that was registered comes back with its own plist
#         (`brew services start --file=<the kept plist>`: a plain start would regenerate it from the formula
#         and lose the owner's edits); one that ran unregistered (`brew services run`) is run again; a plist
#         that was registered but not loaded is put back unloaded; an agent's plist is put back and
#         bootstrapped in the domain it was loaded in. Then the serve entry is recreated and checked byte for
#         byte against the recorded one, and the record removed. Without a record (never retired, or already
#         restored) it says so and does nothing.
# Tools never read the script's stdin (bash -s reads the rest of this text from it) and print on stderr: stdout
# carries only the record.
# Bash clears `set -e` inside $(...): a function that runs in one checks every call it makes. Every external
# call is bounded (lib.sh): a hang stops the step, it is never read as "stopped" or "no serve entry".
# Preamble: KIND (brew|agent) NAME (the formula, or the agent's label) PLIST_PATH (the agent's plist, or the
#           one `brew services start` installs) BREW (brew) STATE_DIR SERVE_SERVICE (svc:<name>, or empty: no
#           serve entry) GUI_DOMAIN LAUNCHCTL TAILSCALE PLUTIL

readonly RECORD="$STATE_DIR/record"           # "<kind> <name> <state when retired>"
readonly SAVED_PLIST="$STATE_DIR/agent.plist" # the agent's plist, moved aside; a brew service's, copied
readonly USER_DOMAIN="user/${GUI_DOMAIN#gui/}" # launchd's other per-user domain (no GUI login needed)
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

# brew_info: a scratch file holding `brew services info --json NAME`, or nothing when the formula is not
# installed (then nothing of it can run). Its fields, as Homebrew's services/formula_wrapper.rb writes them:
# status (started, scheduled, stopped, error, none, unknown, other), loaded (in the user's launchd domain),
# registered (a plist in ~/Library/LaunchAgents or /Library/LaunchDaemons), user (root for the latter), file.
brew_info() {
  local cellar info
  cellar=$(brew_cellar) || exit 1
  [[ -d "$cellar/$NAME" ]] || return 0
  info="$(blumeops_tmpdir)/brew-info.json"
  bounded "$BLUMEOPS_QUICK" "$BREW" services info --json "$NAME" >"$info" ||
    die "\`brew services info --json $NAME\` failed (or ${TMPDIR:-/tmp} is full)"
  [[ -n "$(json_value "$info" 0.status)" ]] || die "\`brew services info --json $NAME\` printed no status"
  printf '%s' "$info"
}

# brew_state: "<status> <loaded> <registered>" ("absent false false" when not installed); a root service is
# refused (the user's brew can neither stop nor restore it).
brew_state() {
  local info status loaded registered user file
  info=$(brew_info) || exit 1
  if [[ -z "$info" ]]; then
    printf 'absent false false'
    return 0
  fi
  status=$(json_value "$info" 0.status)
  loaded=$(json_value "$info" 0.loaded)
  registered=$(json_value "$info" 0.registered)
  user=$(json_value "$info" 0.user)
  file=$(json_value "$info" 0.file)
  if [[ -z "$registered" ]]; then # brew before 4.5 has no "registered": its plist is where brew installs it
    registered=false
    [[ ! -f "$PLIST_PATH" && "$file" != /Library/LaunchDaemons/* ]] || registered=true
  fi
  if [[ "$user" == root || "$file" == /Library/LaunchDaemons/* ]]; then
    die "brew service $NAME runs as root (its plist is $file, in the system domain): this step runs as" \
      "$(id -un) and could neither stop nor restore it. Make it the user's service first, on the host:" \
      "\`sudo $BREW services stop $NAME && $BREW services start $NAME\`, then run again"
  fi
  printf '%s %s %s' "$status" "${loaded:-false}" "$registered"
}

# brew_idle STATE: neither loaded nor registered, so nothing of it runs now or at the next login.
brew_idle() {
  local status loaded registered
  read -r status loaded registered <<<"$1"
  [[ "$loaded" != true && "$registered" != true ]]
}

# agent_domain: the launchd domain the legacy agent is loaded in (gui/<uid> or user/<uid>), or nothing.
agent_domain() {
  local domain
  for domain in "$GUI_DOMAIN" "$USER_DOMAIN"; do
    if bounded "$BLUMEOPS_QUICK" "$LAUNCHCTL" print "$domain/$NAME" >/dev/null 2>&1; then
      printf '%s' "$domain"
      return 0
    fi
  done
}

agent_state() {
  local domain
  domain=$(agent_domain)
  if [[ -n "$domain" ]]; then
    printf 'loaded %s' "$domain"
  elif [[ -f "$PLIST_PATH" ]]; then
    printf 'unloaded'
  else
    printf 'absent'
  fi
}

service_state() {
  if [[ "$KIND" == brew ]]; then brew_state; else agent_state; fi
}

# stop_brew STATE: STATE is brew_state as read just before (the create reads it once for the record too).
stop_brew() {
  local state=$1
  if brew_idle "$state"; then
    log "$WHAT is already stopped and unregistered ($state)"
    return 0
  fi
  if [[ -f "$PLIST_PATH" && ! -f "$SAVED_PLIST" ]]; then
    # brew services stop removes the plist: keep it (checked and committed) so the rollback restores it as it is
    stage_copy "$PLIST_PATH" "$SAVED_PLIST"
    commit_file "$SAVED_PLIST"
    log "kept $PLIST_PATH at $SAVED_PLIST"
  fi
  bounded "$BLUMEOPS_CHANGE" "$BREW" services stop "$NAME" >&2 || die "\`brew services stop $NAME\` failed"
  state=$(brew_state) || exit 1
  brew_idle "$state" || die "$WHAT is '$state' after \`brew services stop $NAME\`"
  log "stopped $WHAT (brew services stop: unloaded and unregistered, it stays stopped after a reboot)"
}

stop_agent() {
  local domain
  domain=$(agent_domain)
  if [[ -n "$domain" ]]; then
    bounded "$BLUMEOPS_CHANGE" "$LAUNCHCTL" bootout "$domain/$NAME" >&2 || die "launchctl bootout $domain/$NAME failed"
    log "unloaded $WHAT from $domain"
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
  [[ -z "$(agent_domain)" ]] || die "$WHAT is still loaded after bootout"
}

stop_service() {
  if [[ "$KIND" == brew ]]; then stop_brew "$1"; else stop_agent; fi
}

# put_plist_back: the kept plist at PLIST_PATH again (nothing when none was kept); a different file there is
# never overwritten.
put_plist_back() {
  [[ -f "$SAVED_PLIST" ]] || return 0
  if [[ ! -f "$PLIST_PATH" ]]; then
    stage_copy "$SAVED_PLIST" "$PLIST_PATH"
    mv -f "$(staged_path "$PLIST_PATH")" "$PLIST_PATH" ||
      die "cannot put $PLIST_PATH back (read-only?); it stays at $SAVED_PLIST, the next run retries"
    log "put $PLIST_PATH back"
  elif ! cmp -s "$PLIST_PATH" "$SAVED_PLIST"; then
    die "$PLIST_PATH exists and differs from the plist kept at $SAVED_PLIST: decide which one to keep" \
      "(delete one of them) and run again"
  fi
}

# recorded_brew STATE: "<status> <loaded> <registered>" of a record; a record written before records held
# loaded and registered has the status alone (then a stopped or absent one was neither).
recorded_brew() {
  local status loaded registered
  read -r status loaded registered <<<"$1"
  if [[ -z "$loaded" ]]; then
    case "$status" in none | stopped | absent) loaded=false registered=false ;; *) loaded=true registered=true ;; esac
  fi
  printf '%s %s %s' "$status" "$loaded" "$registered"
}

start_brew() {
  local status loaded registered state now_loaded
  read -r status loaded registered <<<"$(recorded_brew "$1")"
  if [[ "$loaded" != true && "$registered" != true ]]; then
    log "$WHAT was $status when it was retired: left as it is"
    return 0
  fi
  state=$(brew_state) || exit 1
  [[ "${state%% *}" != absent ]] || die "$NAME is no longer installed: \`brew install $NAME\`, then run again"
  if ! brew_idle "$state"; then
    log "$WHAT is already back ($state): left as it is"
  elif [[ "$loaded" == true && "$registered" == true && -f "$SAVED_PLIST" ]]; then
    bounded "$BLUMEOPS_CHANGE" "$BREW" services start --file="$SAVED_PLIST" "$NAME" >&2 ||
      die "\`brew services start --file=$SAVED_PLIST $NAME\` failed"
    cmp -s "$PLIST_PATH" "$SAVED_PLIST" ||
      die "$PLIST_PATH is not the plist $WHAT had when it was retired (kept at $SAVED_PLIST): compare them"
    log "started $WHAT again with the plist it had"
  elif [[ "$loaded" == true && "$registered" == true ]]; then
    bounded "$BLUMEOPS_CHANGE" "$BREW" services start "$NAME" >&2 || die "\`brew services start $NAME\` failed"
    log "started $WHAT again"
  elif [[ "$loaded" == true ]]; then
    bounded "$BLUMEOPS_CHANGE" "$BREW" services run "$NAME" >&2 || die "\`brew services run $NAME\` failed"
    log "ran $WHAT again (unregistered, as it was: it does not start at login)"
  else
    put_plist_back
    log "put the plist of $WHAT back, not loaded, as it was"
  fi
  state=$(brew_state) || exit 1
  read -r status now_loaded _ <<<"$state"
  [[ "$loaded" != true || "$now_loaded" == true ]] || die "$WHAT is '$state' after it was started again"
  release_file "$SAVED_PLIST"
}

start_agent() {
  local was=$1 domain
  put_plist_back
  release_file "$SAVED_PLIST"
  if [[ "$was" != loaded* ]]; then
    log "$WHAT was $was when it was retired: not loading it"
    return 0
  fi
  domain=${was#loaded}
  domain=${domain# }
  domain=${domain:-$GUI_DOMAIN}
  if [[ -z "$(agent_domain)" ]]; then
    [[ -f "$PLIST_PATH" ]] || die "$WHAT was loaded when retired but $PLIST_PATH is gone: restore it, then run again"
    bounded "$BLUMEOPS_CHANGE" "$LAUNCHCTL" bootstrap "$domain" "$PLIST_PATH" >&2 ||
      die "launchctl bootstrap $domain $PLIST_PATH failed (the gui domain exists only while the user is logged in)"
    log "loaded $WHAT again in $domain"
  fi
  [[ -n "$(agent_domain)" ]] || die "$WHAT is not loaded after bootstrap"
}

start_service() {
  if [[ "$KIND" == brew ]]; then start_brew "$1"; else start_agent "$1"; fi
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
  state=$(service_state) || exit 1
  if [[ -f "$RECORD" ]]; then
    log "$WHAT was retired before (record in $STATE_DIR): keeping that record"
  else
    write_record "$state"
  fi
  stop_service "$state"
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
