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
# The context, tag, build and push helpers (write_image_context, tree_content_tag, build_push_image) are lib.sh's,
# shared with devpi-export.sh.

step_create() {
  local scratch tag
  scratch="$(blumeops_tmpdir)/context"
  write_image_context "$scratch"
  tag=$(tree_content_tag "$scratch")
  [[ "$tag" == "$IMAGE_TAG" ]] ||
    die "the build context written here hashes to $tag, not the $IMAGE_TAG the program computed; nothing was built"
  build_push_image "$scratch" "$IMAGE_TAG"
}

step_delete() {
  log "left $REGISTRY/$REPOSITORY:$IMAGE_TAG in the registry and in Docker Desktop's image store"
}

run_action "$@"
