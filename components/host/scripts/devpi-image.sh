# ---- components/host/scripts/devpi-image.sh: build the devpi image and push it to the host's registry ----
# create: writes the build context (FILE_<n>_NAME / FILE_<n>_TEXT, sorted by name) into a scratch directory,
#         recomputes its content tag (sha256 over name, NUL, length, NUL, bytes of every file; the first 16 hex)
#         and refuses to go on when it is not IMAGE_TAG (the tag the program computed from the same bytes).
#         When REGISTRY already has REPOSITORY:IMAGE_TAG (HEAD of the manifest answers 200), it builds and pushes
#         nothing. Otherwise: `docker buildx build --platform PLATFORM --load` with Docker Desktop's docker,
#         `docker save` (an OCI image layout), and the push of that layout's blobs and manifest with curl from
#         the host: Docker Desktop's daemon runs in a VM whose localhost is not the host's, so it cannot push to
#         the registry on the host's loopback itself. The push is read back (the tag's digest is the manifest's).
# delete: nothing: the image stays in the registry (a later create finds it and builds nothing) and in Docker
#         Desktop's image store (its build cache).
# Preamble: DOCKER CURL JQ SHASUM TAR REGISTRY REPOSITORY IMAGE_TAG PLATFORM FILE_COUNT FILE_<n>_NAME FILE_<n>_TEXT

image_context_tag() {
  local dir=$1 index name size stream sum
  stream="$dir.hashed"
  : >"$stream" || die "cannot write $stream (is ${TMPDIR:-/tmp} full?)"
  for ((index = 1; index <= FILE_COUNT; index++)); do
    name="FILE_${index}_NAME"
    size=$(wc -c <"$dir/${!name}" | tr -d ' ') || die "cannot read $dir/${!name}"
    { printf '%s\0%s\0' "${!name}" "$size" && cat "$dir/${!name}"; } >>"$stream" ||
      die "cannot write $stream (is ${TMPDIR:-/tmp} full?)"
  done
  sum=$(bounded "$BLUMEOPS_QUICK" "$SHASUM" -a 256 "$stream") || die "\`shasum -a 256\` failed"
  printf '%s' "${sum:0:16}"
}

write_image_context() {
  local dir=$1 index name text
  mkdir -p "$dir" || die "cannot create the build context $dir (is ${TMPDIR:-/tmp} full?)"
  for ((index = 1; index <= FILE_COUNT; index++)); do
    name="FILE_${index}_NAME" text="FILE_${index}_TEXT"
    [[ "${!name}" =~ ^[A-Za-z0-9._-]+$ ]] || die "the context file name '${!name}' is not a plain file name"
    printf '%s' "${!text}" >"$dir/${!name}" 2>/dev/null ||
      die "cannot write $dir/${!name} (is ${TMPDIR:-/tmp} full or read-only?); nothing was built"
  done
}

# registry_status PATH: the HTTP status of a HEAD of REGISTRY's /v2/PATH (curl --head: with -X HEAD curl would
# wait for the body the Content-Length announces); a registry that does not answer stops the step (nothing is
# decided on a missing answer).
registry_status() {
  local code
  code=$(bounded "$BLUMEOPS_QUICK" "$CURL" -sS -o /dev/null -w '%{http_code}' --max-time 30 --head \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -H 'Accept: application/vnd.oci.image.index.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
    "http://$REGISTRY/v2/$1") || die "the registry at http://$REGISTRY does not answer (is it running?); nothing was built"
  printf '%s' "$code"
}

push_blob() {
  local layout=$1 digest=$2 file code location headers
  file="$layout/blobs/${digest/://}"
  [[ -f "$file" ]] || die "the saved image has no blob $digest (docker save wrote an incomplete layout)"
  code=$(registry_status "$REPOSITORY/blobs/$digest")
  [[ "$code" != 200 ]] || return 0
  headers="$(blumeops_tmpdir)/upload-headers"
  code=$(bounded "$BLUMEOPS_QUICK" "$CURL" -sS -o /dev/null -D "$headers" -w '%{http_code}' --max-time 30 \
    -X POST "http://$REGISTRY/v2/$REPOSITORY/blobs/uploads/") || die "starting the upload of $digest failed"
  [[ "$code" == 202 ]] || die "the registry refused to start the upload of $digest (HTTP $code)"
  location=$(tr -d '\r' <"$headers" | sed -n 's/^[Ll]ocation: *//p' | tail -n 1)
  [[ -n "$location" ]] || die "the registry gave no upload location for $digest"
  [[ "$location" == http* ]] || location="http://$REGISTRY$location"
  if [[ "$location" == *\?* ]]; then
    location="$location&digest=$digest"
  else
    location="$location?digest=$digest"
  fi
  code=$(bounded "$BLUMEOPS_CHANGE" "$CURL" -sS -o /dev/null -w '%{http_code}' --max-time 110 -X PUT \
    -H 'Content-Type: application/octet-stream' --data-binary "@$file" "$location") ||
    die "uploading $digest failed"
  [[ "$code" == 201 ]] || die "the registry refused the blob $digest (HTTP $code)"
}

# push_layout LAYOUT: push the image of an OCI image layout (docker save) as REPOSITORY:IMAGE_TAG.
push_layout() {
  local layout=$1 media digest file code pushed blob
  [[ -f "$layout/index.json" ]] ||
    die "docker save wrote no OCI image layout (index.json): Docker 25 or newer is needed; nothing was pushed"
  media=$(bounded "$BLUMEOPS_QUICK" "$JQ" -r '.manifests[0].mediaType' "$layout/index.json") ||
    die "cannot read $layout/index.json"
  digest=$(bounded "$BLUMEOPS_QUICK" "$JQ" -r '.manifests[0].digest' "$layout/index.json")
  file="$layout/blobs/${digest/://}"
  if [[ "$media" == application/vnd.oci.image.index.v1+json ]]; then
    # the containerd image store saves an index: the platform's manifest is the image
    digest=$(bounded "$BLUMEOPS_QUICK" "$JQ" -r --arg os "${PLATFORM%%/*}" --arg arch "${PLATFORM#*/}" \
      '[.manifests[] | select(.platform.os == $os and .platform.architecture == $arch)][0].digest' "$file")
    media=application/vnd.oci.image.manifest.v1+json
    file="$layout/blobs/${digest/://}"
  fi
  [[ -f "$file" && "$media" == application/vnd.oci.image.manifest.v1+json ]] ||
    die "the saved image has no $PLATFORM manifest (index.json: $media $digest); nothing was pushed"
  while IFS= read -r blob; do
    push_blob "$layout" "$blob"
  done < <(bounded "$BLUMEOPS_QUICK" "$JQ" -r '.config.digest, .layers[].digest' "$file")
  code=$(bounded "$BLUMEOPS_CHANGE" "$CURL" -sS -o /dev/null -w '%{http_code}' --max-time 60 -X PUT \
    -H "Content-Type: $media" --data-binary "@$file" "http://$REGISTRY/v2/$REPOSITORY/manifests/$IMAGE_TAG") ||
    die "pushing the manifest of $REPOSITORY:$IMAGE_TAG failed"
  [[ "$code" == 201 ]] || die "the registry refused the manifest of $REPOSITORY:$IMAGE_TAG (HTTP $code)"
  pushed=$(bounded "$BLUMEOPS_QUICK" "$CURL" -sS -I --max-time 30 -H "Accept: $media" \
    "http://$REGISTRY/v2/$REPOSITORY/manifests/$IMAGE_TAG" | tr -d '\r' |
    sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p')
  [[ "$pushed" == "$digest" ]] ||
    die "$REPOSITORY:$IMAGE_TAG reads back as '${pushed:-nothing}', not the pushed $digest"
}

step_create() {
  local scratch tag code local_ref
  scratch="$(blumeops_tmpdir)/context"
  write_image_context "$scratch"
  tag=$(image_context_tag "$scratch")
  [[ "$tag" == "$IMAGE_TAG" ]] ||
    die "the build context written here hashes to $tag, not the $IMAGE_TAG the program computed; nothing was built"
  code=$(registry_status "$REPOSITORY/manifests/$IMAGE_TAG")
  if [[ "$code" == 200 ]]; then
    log "$REGISTRY/$REPOSITORY:$IMAGE_TAG is already in the registry: nothing to build or push"
    return 0
  fi
  [[ "$code" == 404 ]] || die "the registry answered HTTP $code for $REPOSITORY:$IMAGE_TAG; nothing was built"
  bounded "$BLUMEOPS_QUICK" "$DOCKER" info >/dev/null 2>&1 ||
    die "Docker Desktop is not running (\`docker info\` failed): start it (it needs the GUI session), then re-run"
  local_ref="$REPOSITORY:$IMAGE_TAG"
  log "building $local_ref for $PLATFORM"
  bounded "$BLUMEOPS_LONG" "$DOCKER" buildx build --platform "$PLATFORM" --provenance=false --sbom=false --load \
    --tag "$local_ref" "$scratch" >&2 ||
    die "\`docker buildx build\` of $local_ref failed (its output is above); nothing was pushed"
  bounded "$BLUMEOPS_CHANGE" "$DOCKER" save --output "$scratch.tar" "$local_ref" >&2 ||
    die "\`docker save $local_ref\` failed; nothing was pushed"
  mkdir -p "$scratch.layout" || die "cannot create $scratch.layout"
  bounded "$BLUMEOPS_CHANGE" "$TAR" -xf "$scratch.tar" -C "$scratch.layout" ||
    die "cannot unpack the saved image (is ${TMPDIR:-/tmp} full?); nothing was pushed"
  push_layout "$scratch.layout"
  log "pushed $REGISTRY/$REPOSITORY:$IMAGE_TAG"
}

step_delete() {
  log "left $REGISTRY/$REPOSITORY:$IMAGE_TAG in the registry and in Docker Desktop's image store"
}

run_action "$@"
