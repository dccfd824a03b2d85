# ---- components/host/scripts/launch-agent.sh: one LaunchAgent ----
# create: make the log directories, lint the plist (plutil -lint) before it replaces PLIST_PATH atomically,
#         and restart the job at most once: bootout + bootstrap when the plist changed (launchd reads a plist
#         only at bootstrap), `kickstart -k` when only a file the job reads changed (another step left one of
#         RESTART_MARKERS), bootstrap when it is not loaded. A restart-pending marker next to the plist is
#         written before the plist is replaced and removed, with RESTART_MARKERS, only after the job is
#         loaded again: a failed reload is retried by the next run although the plist is then unchanged.
# delete: boot it out and remove the plist (and its marker); a plist that was there before the program first
#         wrote it (a pre-existing install under the same label) is put back and loaded again.
# Every launchctl call is bounded (BLUMEOPS_QUICK/BLUMEOPS_CHANGE seconds).
# Preamble: LABEL PLIST_PATH PLIST GUI_DOMAIN LAUNCHCTL PLUTIL LOG_DIRS (one directory per line) RETRY_DELAY
#           RESTART_MARKERS (one path per line: markers other steps leave when a file the job reads changed)
#           RESTART_SIGNAL (a digest of those files: its change is what re-runs this step; unused here)

PLIST_MARKER=$(restart_marker "$PLIST_PATH")

bootstrap_agent() {
  local attempt
  for attempt in 1 2 3; do
    if bounded "$BLUMEOPS_CHANGE" "$LAUNCHCTL" bootstrap "$GUI_DOMAIN" "$PLIST_PATH"; then
      return 0
    fi
    # bootout finishes asynchronously: a bootstrap right after it can fail with "5: Input/output error".
    log "launchctl bootstrap $GUI_DOMAIN $PLIST_PATH failed (attempt $attempt)"
    sleep $((attempt * RETRY_DELAY))
  done
  die "launchctl bootstrap $GUI_DOMAIN $PLIST_PATH failed: the gui domain exists only while the user is" \
    "logged in at the GUI (enable automatic login on this Mac), and \`plutil -lint $PLIST_PATH\` must pass;" \
    "the next run retries (restart pending: $PLIST_MARKER)"
}

# other_restart_pending: another step left a marker: a file the job reads changed since its last restart.
other_restart_pending() {
  local marker
  while IFS= read -r marker; do
    if [[ -n "$marker" && -e "$marker" ]]; then
      return 0
    fi
  done <<<"$RESTART_MARKERS"
  return 1
}

clear_restart_markers() {
  local marker
  rm -f "$PLIST_MARKER"
  while IFS= read -r marker; do
    [[ -z "$marker" ]] || rm -f "$marker"
  done <<<"$RESTART_MARKERS"
}

step_create() {
  local dir
  : "$RESTART_SIGNAL"
  while IFS= read -r dir; do
    [[ -z "$dir" ]] || ensure_dir "$dir"
  done <<<"$LOG_DIRS"
  if ! same_content "$PLIST_PATH" "$PLIST"; then
    stage_file "$PLIST_PATH" 0644 "$PLIST"
    bounded "$BLUMEOPS_QUICK" "$PLUTIL" -lint "$(staged_path "$PLIST_PATH")" >&2 ||
      die "plutil -lint rejected the plist rendered for $LABEL; $PLIST_PATH is left as it was"
    mark_restart_pending "$PLIST_PATH"
    commit_file "$PLIST_PATH"
    log "wrote $PLIST_PATH"
  fi
  if [[ -e "$PLIST_MARKER" ]]; then
    if agent_loaded "$LABEL"; then
      bounded "$BLUMEOPS_CHANGE" "$LAUNCHCTL" bootout "$GUI_DOMAIN/$LABEL" ||
        die "launchctl bootout $GUI_DOMAIN/$LABEL failed; the next run retries (restart pending: $PLIST_MARKER)"
    fi
    bootstrap_agent
    log "loaded $LABEL in $GUI_DOMAIN from the new plist"
  elif ! agent_loaded "$LABEL"; then
    bootstrap_agent
    log "loaded $LABEL in $GUI_DOMAIN"
  elif other_restart_pending; then
    bounded "$BLUMEOPS_CHANGE" "$LAUNCHCTL" kickstart -k "$GUI_DOMAIN/$LABEL" ||
      die "launchctl kickstart -k $GUI_DOMAIN/$LABEL failed; the next run retries (a restart is pending)"
    log "restarted $LABEL for its changed files"
  fi
  agent_loaded "$LABEL" || die "$LABEL is not loaded after bootstrap: see \`launchctl print $GUI_DOMAIN/$LABEL\`"
  clear_restart_markers
}

step_delete() {
  if is_adopted "$PLIST_PATH" || [[ ! -e "$PLIST_PATH" ]] || same_content "$PLIST_PATH" "$PLIST"; then
    if agent_loaded "$LABEL"; then
      bounded "$BLUMEOPS_CHANGE" "$LAUNCHCTL" bootout "$GUI_DOMAIN/$LABEL" ||
        die "launchctl bootout $GUI_DOMAIN/$LABEL failed; the next run retries"
      log "unloaded $LABEL"
    fi
    release_file "$PLIST_PATH"
  fi
  rm -f "$PLIST_MARKER" || die "cannot remove $PLIST_MARKER"
  # a plist that was there before blumeops is back: load it again, as it was before the program came
  if [[ -e "$PLIST_PATH" ]] && ! agent_loaded "$LABEL"; then
    if bounded "$BLUMEOPS_CHANGE" "$LAUNCHCTL" bootstrap "$GUI_DOMAIN" "$PLIST_PATH"; then
      log "loaded the restored $PLIST_PATH"
    else
      log "restored $PLIST_PATH but could not load it: \`launchctl bootstrap $GUI_DOMAIN $PLIST_PATH\` by hand"
    fi
  fi
}

run_action "$@"
