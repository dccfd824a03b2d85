# ---- components/host/scripts/zot-ready.sh: wait until zot answers ----
# create: GET READY_URL until it answers (READY_ATTEMPTS tries, READY_DELAY seconds apart). Re-runs whenever
#         the config or plist changes (their digests are in the preamble). Changes nothing.
# delete: nothing to undo.
# Preamble: READY_URL READY_ATTEMPTS READY_DELAY CURL ZOT_LABEL ZOT_ERR_LOG GUI_DOMAIN CONFIG_DIGEST

step_create() {
  local attempt
  log "waiting for zot (config $CONFIG_DIGEST) on $READY_URL"
  for ((attempt = 1; attempt <= READY_ATTEMPTS; attempt++)); do
    if "$CURL" -fsS -o /dev/null --max-time 5 "$READY_URL"; then
      log "zot answers on $READY_URL"
      return 0
    fi
    sleep "$READY_DELAY"
  done
  die "zot did not answer on $READY_URL after $READY_ATTEMPTS tries: read $ZOT_ERR_LOG and" \
    "\`launchctl print $GUI_DOMAIN/$ZOT_LABEL\`"
}

step_delete() {
  :
}

run_action "$@"
