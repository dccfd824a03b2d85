# Shared by the stub tools: record the call, fail when a test injected a failure.
# State lives in $STUB_STATE: calls.log (one line per call), fail/<tool>[-<subcommand>] (inject a failure),
# hang/<tool>[-<subcommand>] (the call never returns), once/<tool>[-<subcommand>] (fails once, then works).
S=${STUB_STATE:?STUB_STATE is not set}
TOOL=$(basename "$0")
printf '%s %s\n' "$TOOL" "$*" >>"$S/calls.log"
stub_fail() {
  local key
  for key in "$TOOL" "$TOOL-${1:-}"; do
    if [[ -e "$S/hang/$key" ]]; then
      exec sleep 3600
    fi
    if [[ -e "$S/once/$key" ]]; then
      rm -f "$S/once/$key"
      echo "stub $TOOL: injected one-time failure of '$TOOL $*'" >&2
      exit 1
    fi
    if [[ -e "$S/fail/$key" ]]; then
      echo "stub $TOOL: injected failure of '$TOOL $*'" >&2
      exit 1
    fi
  done
}
