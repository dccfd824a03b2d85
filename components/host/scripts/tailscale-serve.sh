# ---- components/host/scripts/tailscale-serve.sh: one `tailscale serve --service` entry with a fixed target ----
# create: point SERVICE's SERVE_PROTOCOL port SERVE_PORT at SERVE_TARGET unless `tailscale serve status
#         --json` shows it already does. The Tailscale Service must exist first (the program creates it).
# delete: `tailscale serve clear SERVICE`.
# Preamble: SERVICE SERVE_PROTOCOL (https|tcp) SERVE_PORT SERVE_TARGET TAILSCALE PLUTIL

serves_target() {
  local status=$1 subtree
  subtree=$(json_subtree "$status" "Services.$SERVICE")
  case "$SERVE_PROTOCOL" in
  https)
    [[ "$(json_value "$status" "Services.$SERVICE.TCP.$SERVE_PORT.HTTPS")" == true ]] &&
      [[ "$subtree" == *"\"Proxy\":\"$SERVE_TARGET\""* ]]
    ;;
  tcp)
    same_tcp_target "$(serve_tcp_forward "$status" "$SERVICE" "$SERVE_PORT")" "$SERVE_TARGET"
    ;;
  *) die "unknown serve protocol $SERVE_PROTOCOL" ;;
  esac
}

step_create() {
  local status
  status=$(serve_status_file)
  if serves_target "$status"; then
    return 0
  fi
  bounded "$BLUMEOPS_CHANGE" "$TAILSCALE" serve --service="$SERVICE" --"$SERVE_PROTOCOL"="$SERVE_PORT" "$SERVE_TARGET" ||
    die "\`tailscale serve --service=$SERVICE\` failed: the host must be a tagged node and approved for $SERVICE" \
      "(autoApprovers.services in the tailnet policy), and the Service must exist in the admin console"
  status=$(serve_status_file)
  serves_target "$status" || die "$SERVICE does not serve $SERVE_TARGET after \`tailscale serve\`"
  log "$SERVICE $SERVE_PROTOCOL:$SERVE_PORT -> $SERVE_TARGET"
}

step_delete() {
  serve_clear "$SERVICE"
}

run_action "$@"
