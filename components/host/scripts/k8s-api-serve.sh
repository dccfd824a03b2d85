# ---- components/host/scripts/k8s-api-serve.sh: svc:k8s -> the API server's (dynamic) host port ----
# The docker driver publishes the API server on a random host port that changes on every restart.
# create: read it (`docker port PROFILE APISERVER_PORT/tcp`) and re-point `tailscale serve --service=SERVICE
#         --tcp=SERVE_PORT tcp://localhost:<port>` when the serve entry points elsewhere. Fails if the
#         cluster is not running.
# agent:  the same, every 60 s from its LaunchAgent; a stopped cluster is not an error there.
# delete: `tailscale serve clear SERVICE`.
# Preamble: PROFILE APISERVER_PORT SERVICE SERVE_PORT DOCKER TAILSCALE PLUTIL

api_host_port() {
  local published
  published=$(bounded "$BLUMEOPS_QUICK" "$DOCKER" port "$PROFILE" "$APISERVER_PORT/tcp" 2>/dev/null) || return 1
  published=${published%%$'\n'*}
  published=${published##*:}
  [[ "$published" =~ ^[0-9]+$ ]] || return 1
  printf '%s' "$published"
}

repoint() {
  local port=$1 target status
  target="tcp://localhost:$port"
  status=$(serve_status_file)
  if same_tcp_target "$(serve_tcp_forward "$status" "$SERVICE" "$SERVE_PORT")" "$target"; then
    return 0
  fi
  bounded "$BLUMEOPS_CHANGE" "$TAILSCALE" serve --service="$SERVICE" --tcp="$SERVE_PORT" "$target" ||
    die "\`tailscale serve --service=$SERVICE --tcp=$SERVE_PORT $target\` failed: the host must be a tagged" \
      "node approved for $SERVICE, and the Service must exist"
  status=$(serve_status_file)
  same_tcp_target "$(serve_tcp_forward "$status" "$SERVICE" "$SERVE_PORT")" "$target" ||
    die "$SERVICE does not forward to $target after \`tailscale serve\`"
  log "$SERVICE tcp:$SERVE_PORT -> $target"
}

step_create() {
  local port
  port=$(api_host_port) || die "cannot read the API server's host port (\`docker port $PROFILE $APISERVER_PORT/tcp\`):" \
    "is the minikube profile $PROFILE running? (\`minikube status -p $PROFILE\`)"
  repoint "$port"
}

step_agent() {
  local port
  if ! port=$(api_host_port); then
    log "minikube profile $PROFILE is not running: nothing to re-point"
    return 0
  fi
  repoint "$port"
}

step_delete() {
  serve_clear "$SERVICE"
}

run_action "$@"
