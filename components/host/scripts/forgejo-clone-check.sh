# ---- components/host/scripts/forgejo-clone-check.sh: one clone from the cluster forge, trusting only the old key ----
# create: clones CLONE_PATH over SSH from the cluster forge's Service NAMESPACE/SERVICE (through
#         `kubectl port-forward`, the backend the tailnet name git reaches), as SSH_USER with the key CLONE_KEY (a
#         secret on stdin, written 0600 to scratch), trusting only the host keys the brew forge presented: the
#         public keys of its built-in SSH server in KEYS_DIR (the snapshot's ssh/, carried into the claim with the
#         data). A forge that presents any other key is refused (StrictHostKeyChecking), so a pass proves every
#         client that trusted the brew forge trusts this one. The clone goes to scratch and is removed.
# delete: nothing to undo (a check changes nothing).
# Preamble: PROFILE KUBECTL KUBECONFIG_PATH NAMESPACE SERVICE SERVICE_PORT SSH_USER CLONE_PATH KEYS_DIR GIT SSH
#           CLONE_KEY (secret)

FORWARD_PID="" FORWARD_PORT=""
stop_forward() {
  [[ -z "$FORWARD_PID" ]] || kill "$FORWARD_PID" 2>/dev/null || true
  cleanup_temps
}

# forward SCRATCH: `kubectl port-forward` of the Service to a free loopback port, in the background (its pid in
# FORWARD_PID, stopped on exit; its port in FORWARD_PORT). Not in a subshell: the pid must reach the trap.
forward() {
  local out="$1/forward.log" try
  : >"$out" # before the background job: the loop reads it at once, whether or not kubectl wrote yet
  "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" --context "$PROFILE" -n "$NAMESPACE" port-forward \
    "svc/$SERVICE" ":$SERVICE_PORT" --address 127.0.0.1 </dev/null >"$out" 2>&1 9>&- &
  FORWARD_PID=$!
  for ((try = 0; try < 60; try++)); do
    FORWARD_PORT=$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9][0-9]*\) -> .*/\1/p' "$out" | head -n 1)
    [[ -z "$FORWARD_PORT" ]] || return 0
    kill -0 "$FORWARD_PID" 2>/dev/null || break
    sleep 0.5
  done
  die "\`kubectl port-forward svc/$SERVICE\` did not forward ($(tail -n 2 "$out" | tr '\n' ' ')): is the forge's" \
    "pod ready in $NAMESPACE?"
}

step_create() {
  local scratch port key known wrapper pub keys out type blob
  scratch=$(blumeops_tmpdir)
  trap stop_forward EXIT
  known="$scratch/known_hosts" key="$scratch/clone-key" wrapper="$scratch/ssh"
  # the brew forge's keys first: without them there is nothing to check against, and no need of the cluster
  local found=()
  for pub in "$KEYS_DIR"/*.pub; do
    [[ -f "$pub" ]] || continue
    read -r type blob _ <"$pub" || continue
    found+=("$type $blob")
  done
  keys=${#found[@]}
  ((keys > 0)) || die "no host key of the brew forge in $KEYS_DIR (*.pub of its built-in SSH server): cannot tell" \
    "whether the cluster forge presents the same one"
  forward "$scratch"
  port=$FORWARD_PORT
  : >"$known"
  for pub in "${found[@]}"; do
    printf '[127.0.0.1]:%s %s\n' "$port" "$pub" >>"$known"
  done
  (umask 077 && printf '%s\n' "$CLONE_KEY" >"$key")
  # A constant wrapper: the values reach ssh as arguments from its environment, never as command text.
  printf '%s\n' '#!/bin/bash' 'exec "$BLUMEOPS_SSH" -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes \' \
    '  -o UserKnownHostsFile="$BLUMEOPS_KNOWN" -o IdentitiesOnly=yes -o IdentityFile="$BLUMEOPS_KEY" "$@"' >"$wrapper"
  chmod 0700 "$wrapper"
  if ! out=$(BLUMEOPS_SSH=$SSH BLUMEOPS_KNOWN=$known BLUMEOPS_KEY=$key GIT_SSH=$wrapper GIT_TERMINAL_PROMPT=0 \
    bounded "$BLUMEOPS_LONG" "$GIT" clone --quiet --depth 1 "ssh://$SSH_USER@127.0.0.1:$port/$CLONE_PATH" \
    "$scratch/clone" 2>&1); then
    case "$out" in
    *"Host key verification failed"* | *"REMOTE HOST IDENTIFICATION HAS CHANGED"*)
      die "the cluster forge presents a host key the brew forge never had: the carried keys did not reach its" \
        "APP_DATA_PATH/ssh (clients would see a changed key); the name git is not handed over" ;;
    *) die "cannot clone $CLONE_PATH from the cluster forge: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')" ;;
    esac
  fi
  log "cloned $CLONE_PATH from $NAMESPACE/$SERVICE as $SSH_USER, trusting only the brew forge's $keys host key(s)"
}

step_delete() {
  log "nothing to undo (a check changes nothing)"
}

run_action "$@"
