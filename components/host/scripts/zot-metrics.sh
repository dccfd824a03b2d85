# ---- components/host/scripts/zot-metrics.sh: run by the metrics LaunchAgent of zot ----
# agent: probe zot's catalog and write the gauge METRIC_UP (zot_up, 1/0) to TEXTFILE via a temp file + rename.
# Preamble: CURL PROBE_URL TEXTFILE METRIC_UP (the gauge's name: components/host/metrics.py)

step_agent() {
  local up=0
  if bounded "$BLUMEOPS_QUICK" "$CURL" -fsS -o /dev/null --max-time 10 "$PROBE_URL"; then
    up=1
  fi
  stage_file "$TEXTFILE" 0644 "# HELP $METRIC_UP Whether zot answers on $PROBE_URL (1) or not (0).
# TYPE $METRIC_UP gauge
$METRIC_UP $up"
  commit_file "$TEXTFILE"
}

run_action "$@"
