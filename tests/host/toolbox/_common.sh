# Shared by the stub tools: record the call, fail when a test injected a failure.
# State lives in $STUB_STATE: calls.log (one line per call), fail/<tool>[-<subcommand>] (inject a failure).
S=${STUB_STATE:?STUB_STATE is not set}
TOOL=$(basename "$0")
printf '%s %s\n' "$TOOL" "$*" >>"$S/calls.log"
stub_fail() {
  local key
  for key in "$TOOL" "$TOOL-${1:-}"; do
    if [[ -e "$S/fail/$key" ]]; then
      echo "stub $TOOL: injected failure of '$TOOL $*'" >&2
      exit 1
    fi
  done
}
