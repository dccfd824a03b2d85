# ---- components/host/scripts/minikube-cluster.sh: the minikube cluster on Docker Desktop ----
# create: require Docker Desktop (`docker info`); install the containerd hosts.toml mirror files through
#         minikube's file sync (MINIKUBE_HOME/files/..., copied into the node on every start; copied into a
#         running node with `minikube cp` when they change); refuse a profile with another driver or
#         runtime unless ALLOW_REPLACE (then delete it first); refuse cpus/memory/disk that differ from the
#         existing profile (minikube cannot resize); `minikube start` only when the profile is not Running.
# delete: `minikube delete` the profile (the cluster and its data) and remove the mirror files.
# Preamble: PROFILE DRIVER CONTAINER_RUNTIME CPUS MEMORY_MB DISK_SIZE DISK_SIZE_MB APISERVER_NAMES (one per
#           line) APISERVER_PORT LISTEN_ADDRESS ALLOW_REPLACE MINIKUBE_HOME MINIKUBE DOCKER PLUTIL
#           MIRROR_COUNT MIRROR_<n>_REGISTRY MIRROR_<n>_TOML (n = 1..MIRROR_COUNT)

# minikube runs `docker` by name: give the SSH shell Docker Desktop's and minikube's directories.
PATH="$(dirname "$DOCKER"):$(dirname "$MINIKUBE"):$PATH"
export PATH MINIKUBE_HOME

CERTS_D="$MINIKUBE_HOME/files/etc/containerd/certs.d"
PROFILE_CONFIG="$MINIKUBE_HOME/profiles/$PROFILE/config.json"
CHANGED_MIRRORS=()

check_docker() {
  "$DOCKER" info >/dev/null 2>&1 || die "Docker Desktop is not running (\`$DOCKER info\` failed)." \
    "It needs its GUI: install it with \`brew install --cask docker\`, open Docker Desktop once on this Mac to" \
    "finish its setup, give it 12 GB of memory (Settings > Resources), keep its Kubernetes disabled, turn on" \
    "'Start Docker Desktop when you sign in', then run pulumi up again"
}

profile_value() {
  json_value "$PROFILE_CONFIG" "$1"
}

host_status() {
  local status
  if [[ ! -f "$PROFILE_CONFIG" ]]; then
    printf 'Nonexistent'
    return 0
  fi
  status=$("$MINIKUBE" status -p "$PROFILE" --format '{{.Host}}' 2>/dev/null) || true
  printf '%s' "${status:-Unknown}"
}

install_mirrors() {
  local n registry toml path
  for ((n = 1; n <= MIRROR_COUNT; n++)); do
    registry="MIRROR_${n}_REGISTRY"
    toml="MIRROR_${n}_TOML"
    path="$CERTS_D/${!registry}/hosts.toml"
    if replace_if_changed "$path" 0644 "${!toml}"; then
      CHANGED_MIRRORS+=("${!registry}")
      log "wrote $path"
    fi
  done
}

remove_mirrors() {
  local n registry dir
  for ((n = 1; n <= MIRROR_COUNT; n++)); do
    registry="MIRROR_${n}_REGISTRY"
    remove_file "$CERTS_D/${!registry}/hosts.toml"
    remove_empty_dir "$CERTS_D/${!registry}"
  done
  for dir in "$CERTS_D" "$MINIKUBE_HOME/files/etc/containerd" "$MINIKUBE_HOME/files/etc" "$MINIKUBE_HOME/files"; do
    remove_empty_dir "$dir"
  done
}

check_existing_profile() {
  local driver runtime cpus memory disk
  [[ -f "$PROFILE_CONFIG" ]] || return 0
  driver=$(profile_value Driver)
  runtime=$(profile_value KubernetesConfig.ContainerRuntime)
  if [[ "$driver" != "$DRIVER" || "$runtime" != "$CONTAINER_RUNTIME" ]]; then
    if [[ "$ALLOW_REPLACE" != true ]]; then
      die "the minikube profile $PROFILE runs the '${driver:-?}' driver with the '${runtime:-?}' runtime;" \
        "this stack wants '$DRIVER' with '$CONTAINER_RUNTIME'. Replacing it deletes the cluster and all its" \
        "data (PersistentVolumes included): back up what you need first (e.g. \`kubectl get all -A -o yaml\`," \
        "database dumps), then either \`minikube delete -p $PROFILE\` or" \
        "\`pulumi config set blumeops:minikube.allowReplace true\`, and run pulumi up again"
    fi
    log "deleting the profile $PROFILE (driver '${driver:-?}', runtime '${runtime:-?}'): allowReplace is set"
    "$MINIKUBE" delete -p "$PROFILE" || die "\`minikube delete -p $PROFILE\` failed"
    return 0
  fi
  cpus=$(profile_value CPUs)
  memory=$(profile_value Memory)
  disk=$(profile_value DiskSize)
  if [[ "$cpus" != "$CPUS" || "$memory" != "$MEMORY_MB" || "$disk" != "$DISK_SIZE_MB" ]]; then
    die "the minikube profile $PROFILE has cpus=$cpus memory=${memory}MB disk=${disk}MB, the stack wants" \
      "cpus=$CPUS memory=${MEMORY_MB}MB disk=${DISK_SIZE_MB}MB ($DISK_SIZE). minikube cannot resize an" \
      "existing cluster: set blumeops:minikube.cpus/memoryMb/diskSize back to the running values, or" \
      "\`minikube delete -p $PROFILE\` (this deletes the cluster and its data) and run pulumi up again"
  fi
}

start_flags() {
  local name
  printf '%s\n' "--profile=$PROFILE" "--driver=$DRIVER" "--container-runtime=$CONTAINER_RUNTIME" \
    "--cpus=$CPUS" "--memory=$MEMORY_MB" "--disk-size=$DISK_SIZE"
  while IFS= read -r name; do
    [[ -z "$name" ]] || printf '%s\n' "--apiserver-names=$name"
  done <<<"$APISERVER_NAMES"
  printf '%s\n' "--apiserver-port=$APISERVER_PORT" "--listen-address=$LISTEN_ADDRESS"
}

step_create() {
  local status registry flag flags=()
  check_docker
  check_existing_profile
  install_mirrors
  status=$(host_status)
  if [[ "$status" == Running ]]; then
    for registry in "${CHANGED_MIRRORS[@]+"${CHANGED_MIRRORS[@]}"}"; do
      # hosts.toml changes need no containerd restart; file sync would only copy them on the next start.
      "$MINIKUBE" -p "$PROFILE" cp "$CERTS_D/$registry/hosts.toml" "/etc/containerd/certs.d/$registry/hosts.toml" ||
        die "\`minikube cp\` of the $registry mirror into the node failed"
    done
    return 0
  fi
  while IFS= read -r flag; do
    flags+=("$flag")
  done < <(start_flags)
  log "starting minikube profile $PROFILE (was: $status)"
  "$MINIKUBE" start "${flags[@]}" || die "\`minikube start -p $PROFILE\` failed: read its output above;" \
    "\`minikube logs -p $PROFILE\` has more"
  status=$(host_status)
  [[ "$status" == Running ]] || die "minikube profile $PROFILE is '$status' after start"
}

step_delete() {
  if [[ -f "$PROFILE_CONFIG" ]]; then
    "$MINIKUBE" delete -p "$PROFILE" || die "\`minikube delete -p $PROFILE\` failed"
    log "deleted the minikube profile $PROFILE"
  fi
  remove_mirrors
}

run_action "$@"
