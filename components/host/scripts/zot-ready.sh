# ---- components/host/scripts/zot-ready.sh: wait until zot answers ----
# create: GET READY_URL until it answers (READY_ATTEMPTS tries, READY_DELAY seconds apart). Re-runs after
#         every change that makes the LaunchAgent step restart zot: its preamble carries the same restart
#         signal (config and credentials digest) and the plist's digest. Changes nothing.
# delete: nothing to undo.
# Preamble: READY_URL READY_ATTEMPTS READY_DELAY CURL AGENT_LABEL ZOT_ERR_LOG GUI_DOMAIN PLIST_DIGEST
#           RESTART_SIGNAL (a secret when derived from the credentials: never logged)

step_create() {
  local attempt
  : "$RESTART_SIGNAL"
  log "waiting for zot (plist $PLIST_DIGEST) on $READY_URL"
  for ((attempt = 1; attempt <= READY_ATTEMPTS; attempt++)); do
    if bounded "$BLUMEOPS_QUICK" "$CURL" -fsS -o /dev/null --max-time 5 "$READY_URL"; then
      log "zot answers on $READY_URL"
      return 0
    fi
    sleep "$READY_DELAY"
  done
  die "zot did not answer on $READY_URL after $READY_ATTEMPTS tries: read $ZOT_ERR_LOG and" \
    "\`launchctl print $GUI_DOMAIN/$AGENT_LABEL\`"
}

step_delete() {
  :
}

run_action "$@"
