# ---- components/host/scripts/launch-agent.sh: one LaunchAgent ----
# create: make the log directories, lint the plist (plutil -lint) before it replaces PLIST_PATH atomically,
#         and (re)load it with bootout + bootstrap only when its content changed or it is not loaded.
# delete: boot it out and remove the plist.
# Preamble: LABEL PLIST_PATH PLIST GUI_DOMAIN LAUNCHCTL PLUTIL LOG_DIRS (one directory per line) RETRY_DELAY

bootstrap_agent() {
  local attempt
  for attempt in 1 2 3; do
    if "$LAUNCHCTL" bootstrap "$GUI_DOMAIN" "$PLIST_PATH"; then
      return 0
    fi
    # bootout finishes asynchronously: a bootstrap right after it can fail with "5: Input/output error".
    log "launchctl bootstrap $GUI_DOMAIN $PLIST_PATH failed (attempt $attempt)"
    sleep $((attempt * RETRY_DELAY))
  done
  die "launchctl bootstrap $GUI_DOMAIN $PLIST_PATH failed: the gui domain exists only while the user is" \
    "logged in at the GUI (enable automatic login on this Mac), and \`plutil -lint $PLIST_PATH\` must pass"
}

step_create() {
  local dir changed=0 loaded=0
  while IFS= read -r dir; do
    [[ -z "$dir" ]] || ensure_dir "$dir"
  done <<<"$LOG_DIRS"
  if ! same_content "$PLIST_PATH" "$PLIST"; then
    stage_file "$PLIST_PATH" 0644 "$PLIST"
    "$PLUTIL" -lint "$(staged_path "$PLIST_PATH")" >&2 ||
      die "plutil -lint rejected the plist rendered for $LABEL; $PLIST_PATH is left as it was"
    commit_file "$PLIST_PATH"
    changed=1
    log "wrote $PLIST_PATH"
  fi
  if agent_loaded "$LABEL"; then
    loaded=1
  fi
  if ((changed && loaded)); then
    "$LAUNCHCTL" bootout "$GUI_DOMAIN/$LABEL" || die "launchctl bootout $GUI_DOMAIN/$LABEL failed"
    loaded=0
  fi
  if ((!loaded)); then
    bootstrap_agent
    log "loaded $LABEL in $GUI_DOMAIN"
  fi
  agent_loaded "$LABEL" || die "$LABEL is not loaded after bootstrap: see \`launchctl print $GUI_DOMAIN/$LABEL\`"
}

step_delete() {
  if agent_loaded "$LABEL"; then
    "$LAUNCHCTL" bootout "$GUI_DOMAIN/$LABEL" || die "launchctl bootout $GUI_DOMAIN/$LABEL failed"
    log "unloaded $LABEL"
  fi
  remove_file "$PLIST_PATH"
}

run_action "$@"
