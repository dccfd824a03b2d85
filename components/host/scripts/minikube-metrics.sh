# ---- components/host/scripts/minikube-metrics.sh: run by the metrics LaunchAgent of minikube ----
# agent: write minikube_up, minikube_apiserver_up and node/pod/namespace counts (all 0 when down) to TEXTFILE
#        via a temp file + rename.
# Preamble: PROFILE MINIKUBE KUBECTL DOCKER KUBECONFIG_PATH MINIKUBE_HOME TEXTFILE
#           METRIC_UP METRIC_APISERVER_UP METRIC_NODES METRIC_PODS METRIC_NAMESPACES (the gauges' names:
#           components/host/metrics.py)

PATH="$(dirname "$DOCKER"):$PATH"
export PATH MINIKUBE_HOME

count() {
  local listing
  listing=$(bounded "$BLUMEOPS_QUICK" "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" --context "$PROFILE" get "$@" --no-headers 2>/dev/null) || {
    printf '0'
    return 0
  }
  printf '%s\n' "$listing" | grep -c . || true
}

step_agent() {
  local up=0 api=0 nodes=0 pods=0 namespaces=0 host
  host=$(bounded "$BLUMEOPS_QUICK" "$MINIKUBE" status -p "$PROFILE" --format '{{.Host}}' 2>/dev/null) || true
  if [[ "$host" == Running ]]; then
    up=1
    if bounded "$BLUMEOPS_QUICK" "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" --context "$PROFILE" get --raw /healthz >/dev/null 2>&1; then
      api=1
      nodes=$(count nodes)
      pods=$(count pods --all-namespaces)
      namespaces=$(count namespaces)
    fi
  fi
  stage_file "$TEXTFILE" 0644 "# HELP $METRIC_UP Whether the minikube profile $PROFILE is Running (1) or not (0).
# TYPE $METRIC_UP gauge
$METRIC_UP $up
# HELP $METRIC_APISERVER_UP Whether the API server answers /healthz (1) or not (0).
# TYPE $METRIC_APISERVER_UP gauge
$METRIC_APISERVER_UP $api
# HELP $METRIC_NODES Nodes of the cluster.
# TYPE $METRIC_NODES gauge
$METRIC_NODES $nodes
# HELP $METRIC_PODS Pods in all namespaces.
# TYPE $METRIC_PODS gauge
$METRIC_PODS $pods
# HELP $METRIC_NAMESPACES Namespaces.
# TYPE $METRIC_NAMESPACES gauge
$METRIC_NAMESPACES $namespaces"
  commit_file "$TEXTFILE"
}

run_action "$@"
