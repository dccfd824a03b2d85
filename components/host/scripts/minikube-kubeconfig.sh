# ---- components/host/scripts/minikube-kubeconfig.sh: the cluster's kubeconfig, for the program ----
# create: print the profile's kubeconfig with the certificates embedded and the server rewritten to
#         API_SERVER_URL (the Tailscale Service svc:k8s). stdout is a secret output; nothing else is printed
#         there. Changes nothing.
# delete: nothing to undo.
# Preamble: PROFILE KUBECTL KUBECONFIG_PATH API_SERVER_URL

step_create() {
  local kubeconfig
  kubeconfig=$(bounded "$BLUMEOPS_QUICK" "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" config view --raw --minify --flatten --context "$PROFILE") ||
    die "\`kubectl config view --context $PROFILE\` failed: is the minikube profile $PROFILE started?"
  [[ "$kubeconfig" == *certificate-authority-data:* && "$kubeconfig" == *client-key-data:* ]] ||
    die "the kubeconfig of context $PROFILE has no embedded certificates"
  printf '%s\n' "$kubeconfig" | sed -E "s#^([[:space:]]*server:[[:space:]]*).*#\\1$API_SERVER_URL#"
}

step_delete() {
  :
}

run_action "$@"
