# ---- components/host/scripts/minikube-cluster.sh: the minikube cluster on Docker Desktop ----
# create: require Docker Desktop (`docker info`); read the existing profile's driver, runtime and size (an
#         unreadable or empty value stops the step: nothing is deleted on a guess); refuse a profile with
#         another driver unless it is one of LEGACY_DRIVERS and ALLOW_REPLACE is set (then delete it first);
#         never delete a docker profile (another runtime, or cpus/memory/disk that differ: minikube cannot
#         resize, so the step says what to do); install the containerd hosts.toml mirror files (first line
#         MANAGED_MARK) through minikube's file sync (MINIKUBE_HOME/files/..., copied into the node on every
#         start; copied into a running node with `minikube cp` when they change, after `minikube ssh -- sudo
#         mkdir -p` of their folder: kicbase ships only certs.d/docker.io and `minikube cp` creates no parents);
#         a copy into the node is pending (a marker in MINIKUBE_HOME/blumeops/node-copy-pending) from before
#         the file changes until the copy succeeded, so a failed copy is retried by the next run;
#         `minikube start` only when the profile is firmly Stopped (or absent): `minikube status` is asked up
#         to three times, and any other answer (Paused, Error, no answer) stops the step without a change;
#         then remove the managed hosts.toml of registries no longer mirrored, from the node (`minikube ssh`)
#         and from the file sync. Unmarked files are the operator's: kept, never replaced nor removed.
# delete: `minikube delete` the profile (the cluster and its data) and remove every managed mirror file.
# Preamble: PROFILE DRIVER CONTAINER_RUNTIME CPUS MEMORY_MB DISK_SIZE DISK_SIZE_MB APISERVER_NAMES (one per
#           line) APISERVER_PORT LISTEN_ADDRESS ALLOW_REPLACE LEGACY_DRIVERS (one per line) MANAGED_MARK
#           MINIKUBE_HOME MINIKUBE DOCKER PLUTIL STATUS_RETRY_DELAY MIRROR_COUNT MIRROR_<n>_REGISTRY MIRROR_<n>_TOML
#           (n = 1..MIRROR_COUNT)

# minikube runs `docker` by name: give the SSH shell Docker Desktop's and minikube's directories.
PATH="$(dirname "$DOCKER"):$(dirname "$MINIKUBE"):$PATH"
export PATH MINIKUBE_HOME

CERTS_D="$MINIKUBE_HOME/files/etc/containerd/certs.d"
PROFILE_CONFIG="$MINIKUBE_HOME/profiles/$PROFILE/config.json"
NODE_CERTS_D=/etc/containerd/certs.d
PENDING_DIR="$MINIKUBE_HOME/blumeops/node-copy-pending"
STALE_MIRRORS=()

check_docker() {
  bounded "$BLUMEOPS_QUICK" "$DOCKER" info >/dev/null 2>&1 || die "Docker Desktop is not running (\`$DOCKER info\` failed)." \
    "It needs its GUI: install it with \`brew install --cask docker\`, open Docker Desktop once on this Mac to" \
    "finish its setup, give it 12 GB of memory (Settings > Resources), keep its Kubernetes disabled, turn on" \
    "'Start Docker Desktop when you sign in', then run pulumi up again"
}

# profile_value KEYPATH: the value at KEYPATH of the profile's config.json (read with its nulls blanked: see
# json_value). A value that cannot be read, is missing, null or empty stops the step: what is done to the
# profile (even deleting it) depends on these values.
profile_value() {
  local value
  value=$(json_value "$PROFILE_CONFIG" "$1")
  [[ -n "$value" ]] ||
    die "cannot read $1 from the minikube profile config $PROFILE_CONFIG (missing, null, empty or not JSON)," \
      "so the step stops without changing the profile. Check the file (\`$MINIKUBE profile list\`), then run" \
      "pulumi up again"
  printf '%s' "$value"
}

is_legacy_driver() {
  local legacy
  while IFS= read -r legacy; do
    if [[ -n "$legacy" && "$legacy" == "$1" ]]; then
      return 0
    fi
  done <<<"$LEGACY_DRIVERS"
  return 1
}

# host_status: the profile's host state. `minikube status` exits non-zero for a stopped host too, so its
# output decides: a known state is taken at once; no answer, or an unknown one, is asked again (up to three
# times, STATUS_RETRY_DELAY seconds apart) and then printed as Unknown, which never leads to a start.
host_status() {
  local status attempt
  if [[ ! -f "$PROFILE_CONFIG" ]]; then
    printf 'Nonexistent'
    return 0
  fi
  for attempt in 1 2 3; do
    status=$(bounded "$BLUMEOPS_CHANGE" "$MINIKUBE" status -p "$PROFILE" --format '{{.Host}}' 2>/dev/null) || true
    status=${status%%$'\n'*}
    case "$status" in
    Running | Stopped | Nonexistent | Paused | Starting | Stopping | Error | Saved)
      printf '%s' "$status"
      return 0
      ;;
    esac
    log "\`minikube status -p $PROFILE\` gave no known state ('$status', attempt $attempt)"
    [[ "$attempt" == 3 ]] || sleep "$STATUS_RETRY_DELAY"
  done
  printf 'Unknown'
}

# is_managed FILE: FILE's first line is MANAGED_MARK (the program wrote it). An empty file is nobody's:
# the program may write over it.
is_empty_file() {
  [[ -f "$1" && ! -s "$1" ]]
}

is_managed() {
  local first=""
  IFS= read -r first <"$1" || true
  [[ "$first" == "$MANAGED_MARK" ]]
}

wanted_mirror() {
  local n registry
  for ((n = 1; n <= MIRROR_COUNT; n++)); do
    registry="MIRROR_${n}_REGISTRY"
    if [[ "${!registry}" == "$1" ]]; then
      return 0
    fi
  done
  return 1
}

# managed_mirrors: the registries that have a managed hosts.toml in the file sync, one per line.
managed_mirrors() {
  local file
  for file in "$CERTS_D"/*/hosts.toml; do
    if [[ -f "$file" ]] && is_managed "$file"; then
      basename "$(dirname "$file")"
    fi
  done
}

find_stale_mirrors() {
  local registry
  while IFS= read -r registry; do
    if [[ -n "$registry" ]] && ! wanted_mirror "$registry"; then
      STALE_MIRRORS+=("$registry")
    fi
  done < <(managed_mirrors)
}

remove_mirror_files() {
  release_file "$CERTS_D/$1/hosts.toml"
  remove_empty_dir "$CERTS_D/$1"
}

# remove_stale_mirrors: from the running node first (the file sync only ever adds files), then from the file
# sync; a failure leaves them in the file sync, so the next run retries.
remove_stale_mirrors() {
  local registry
  for registry in "${STALE_MIRRORS[@]+"${STALE_MIRRORS[@]}"}"; do
    bounded "$BLUMEOPS_CHANGE" "$MINIKUBE" -p "$PROFILE" ssh -- sudo rm -f "$NODE_CERTS_D/$registry/hosts.toml" ||
      die "removing the $registry mirror from the node failed (\`minikube ssh\`); the next run retries"
    # an empty directory left in the node is harmless (containerd then uses the registry itself)
    bounded "$BLUMEOPS_CHANGE" "$MINIKUBE" -p "$PROFILE" ssh -- sudo rmdir --ignore-fail-on-non-empty \
      "$NODE_CERTS_D/$registry" || log "left the empty directory $NODE_CERTS_D/$registry in the node"
    rm -f "$PENDING_DIR/$registry" || die "cannot remove $PENDING_DIR/$registry"
    remove_mirror_files "$registry"
    log "removed the mirror of $registry (no longer an upstream)"
  done
}

# install_mirrors: write each wanted hosts.toml into the file sync. Before one changes, its copy into the
# node becomes pending (a marker removed only after `minikube cp` or a start succeeded). An unmarked,
# non-empty hosts.toml is the operator's own: kept as it is (with a warning), the mirror is not installed.
install_mirrors() {
  local n registry toml path
  for ((n = 1; n <= MIRROR_COUNT; n++)); do
    registry="MIRROR_${n}_REGISTRY"
    toml="MIRROR_${n}_TOML"
    path="$CERTS_D/${!registry}/hosts.toml"
    if [[ -f "$path" ]] && ! is_managed "$path" && ! is_empty_file "$path"; then
      log "WARNING: kept $path: it is not marked '$MANAGED_MARK' (the operator's own), so the ${!registry}" \
        "mirror through zot is not installed. Remove the file to let blumeops manage it"
      continue
    fi
    if ! same_content "$path" "${!toml}"; then
      ensure_dir "$PENDING_DIR"
      : >"$PENDING_DIR/${!registry}" || die "cannot write $PENDING_DIR/${!registry} (full or read-only?)"
      replace_if_changed "$path" 0644 "${!toml}" || true
      log "wrote $path"
    fi
  done
}

# copy_pending_mirrors: copy every hosts.toml whose copy into the running node is pending, its folder first.
copy_pending_mirrors() {
  local marker registry
  for marker in "$PENDING_DIR"/*; do
    [[ -e "$marker" ]] || continue
    registry=$(basename "$marker")
    if [[ ! -f "$CERTS_D/$registry/hosts.toml" ]]; then
      rm -f "$marker" || die "cannot remove $marker"
      continue
    fi
    bounded "$BLUMEOPS_CHANGE" "$MINIKUBE" -p "$PROFILE" ssh -- sudo mkdir -p "$NODE_CERTS_D/$registry" ||
      die "creating $NODE_CERTS_D/$registry in the node failed (\`minikube ssh\`); the next run retries"
    # hosts.toml changes need no containerd restart; file sync would only copy them on the next start.
    bounded "$BLUMEOPS_CHANGE" "$MINIKUBE" -p "$PROFILE" cp "$CERTS_D/$registry/hosts.toml" \
      "$NODE_CERTS_D/$registry/hosts.toml" ||
      die "\`minikube cp\` of the $registry mirror into the node failed; the next run retries"
    rm -f "$marker" || die "cannot remove $marker"
    log "copied the $registry mirror into the node"
  done
}

clear_pending_mirrors() {
  local marker
  for marker in "$PENDING_DIR"/*; do
    [[ ! -e "$marker" ]] || rm -f "$marker" || die "cannot remove $marker"
  done
}

remove_mirrors() {
  local registry dir
  while IFS= read -r registry; do
    [[ -z "$registry" ]] || remove_mirror_files "$registry"
  done < <(managed_mirrors)
  clear_pending_mirrors
  for dir in "$CERTS_D" "$MINIKUBE_HOME/files/etc/containerd" "$MINIKUBE_HOME/files/etc" "$MINIKUBE_HOME/files" \
    "$PENDING_DIR" "$MINIKUBE_HOME/blumeops"; do
    remove_empty_dir "$dir"
  done
}

check_existing_profile() {
  local driver runtime cpus memory disk
  [[ -f "$PROFILE_CONFIG" ]] || return 0
  driver=$(profile_value Driver) || exit 1
  runtime=$(profile_value KubernetesConfig.ContainerRuntime) || exit 1
  if [[ "$driver" != "$DRIVER" ]]; then
    if ! is_legacy_driver "$driver"; then
      die "the minikube profile $PROFILE runs the '$driver' driver, which this step does not replace (it" \
        "replaces only $(tr '\n' ' ' <<<"$LEGACY_DRIVERS")profiles); this stack wants '$DRIVER' with" \
        "'$CONTAINER_RUNTIME'. Back up what you need, \`minikube delete -p $PROFILE\` by hand, and run pulumi" \
        "up again"
    fi
    if [[ "$ALLOW_REPLACE" != true ]]; then
      die "the minikube profile $PROFILE runs the '$driver' driver with the '$runtime' runtime;" \
        "this stack wants '$DRIVER' with '$CONTAINER_RUNTIME'. Replacing it deletes the cluster and all its" \
        "data (PersistentVolumes included): back up what you need first (e.g. \`kubectl get all -A -o yaml\`," \
        "database dumps), then either \`minikube delete -p $PROFILE\` or" \
        "\`pulumi config set blumeops:minikube.allowReplace true\`, and run pulumi up again"
    fi
    log "deleting the profile $PROFILE (legacy driver '$driver', runtime '$runtime'): allowReplace is set"
    bounded "$BLUMEOPS_LONG" "$MINIKUBE" delete -p "$PROFILE" || die "\`minikube delete -p $PROFILE\` failed"
    return 0
  fi
  if [[ "$runtime" != "$CONTAINER_RUNTIME" ]]; then
    die "the minikube profile $PROFILE runs the '$driver' driver with the '$runtime' runtime; this stack wants" \
      "'$CONTAINER_RUNTIME'. The program never deletes a $DRIVER profile (allowReplace covers legacy drivers" \
      "only): back up what you need (e.g. \`kubectl get all -A -o yaml\`, database dumps), then" \
      "\`minikube delete -p $PROFILE\` by hand and run pulumi up again"
  fi
  cpus=$(profile_value CPUs) || exit 1
  memory=$(profile_value Memory) || exit 1
  disk=$(profile_value DiskSize) || exit 1
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
  local status flag flags=()
  check_docker
  check_existing_profile
  install_mirrors
  find_stale_mirrors
  status=$(host_status)
  if [[ "$status" == Running ]]; then
    copy_pending_mirrors
    remove_stale_mirrors
    return 0
  fi
  case "$status" in
  Stopped | Nonexistent) ;;
  *)
    die "the minikube profile $PROFILE is '$status' (not Running, not Stopped), so the step starts nothing." \
      "Look at \`$MINIKUBE status -p $PROFILE\` (\`minikube unpause -p $PROFILE\` for Paused; wait for" \
      "Starting/Stopping to finish), then run pulumi up again"
    ;;
  esac
  while IFS= read -r flag; do
    flags+=("$flag")
  done < <(start_flags)
  log "starting minikube profile $PROFILE (was: $status)"
  bounded "$BLUMEOPS_LONG" "$MINIKUBE" start "${flags[@]}" || die "\`minikube start -p $PROFILE\` failed: read its output above;" \
    "\`minikube logs -p $PROFILE\` has more"
  status=$(host_status)
  [[ "$status" == Running ]] || die "minikube profile $PROFILE is '$status' after start"
  # the start copied the file sync into the node: every pending copy is done
  clear_pending_mirrors
  remove_stale_mirrors
}

step_delete() {
  if [[ -f "$PROFILE_CONFIG" ]]; then
    bounded "$BLUMEOPS_LONG" "$MINIKUBE" delete -p "$PROFILE" || die "\`minikube delete -p $PROFILE\` failed"
    log "deleted the minikube profile $PROFILE"
  fi
  remove_mirrors
}

run_action "$@"
