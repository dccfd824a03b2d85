# ---- components/host/scripts/retire-tailscale-service.sh: release a tailnet name held by a Tailscale Service ----
# create: with an access token for the OAuth client, read the Tailscale Service SERVICE from the Tailscale API
#         (GET .../vip-services/SERVICE); when it exists, keep its definition under STATE_DIR and delete it,
#         which frees its MagicDNS name for a new device. Prints the kept definition (or null). A Service that
#         does not exist is a name already free: nothing changes. A copy kept by an earlier run stays the
#         record while the Service matches it (a run again after a failed DELETE deletes once, keeps one
#         copy); one that differs from it (DEFINITION, or its IPv4 address: it was made again by hand since)
#         becomes the record, so the rollback restores what was there last, and the older copy is kept aside
#         (service.json.<UTC time>.prev, never dropped by the step), both said on stderr.
# delete: recreate the Service from the kept definition, then drop the copy. The PUT body is the kept one
#         without its IPv6 address: Tailscale's API takes an IPv4 address at index 0 on creation and refuses
#         an IPv6 one (tailscale's internal/client/tailscale/vip_service.go), and allocates the IPv6 itself.
#         The recreated Service is read back and compared with the kept one (its name and DEFINITION; the
#         IPv4 address is asked for, not promised, so a new one is only reported). A Service that exists
#         already is left as it is: matching the copy (DEFINITION), the copy is dropped; differing from it
#         (redefined by hand since the release), the step refuses and changes nothing, naming the two fixes.
#         Without a copy it says so and does nothing; copies kept aside stay.
# DEFINITION: what the API lets one set on a Service and the step compares: comment, ports, tags, annotations
#         (an empty list or object the same as none). The addresses are compared by their IPv4 one only.
# The OAuth client secret and the token reach curl as its config on file descriptor 8 (`--config /dev/fd/8`,
# a here-string: bash writes it to an unlinked temp file, or a pipe), never in its arguments (bounded gives
# curl /dev/null as stdin). Every curl call is bounded (lib.sh) besides curl's own --max-time: an API that
# never answers stops the step, it is never read as "no such Service".
# Preamble: SERVICE (svc:<name>) API_URL TAILNET ("-": the OAuth client's own) OAUTH_CLIENT_ID STATE_DIR CURL
#           PLUTIL; secret: OAUTH_CLIENT_SECRET

readonly SAVED="$STATE_DIR/service.json"
readonly DEFINITION="comment ports tags annotations"
RESPONSE="$(blumeops_tmpdir)/response.json"
SERVICE_URL="$API_URL/api/v2/tailnet/$TAILNET/vip-services/$SERVICE"
TOKEN=""

[[ -x "$CURL" ]] || die "curl is not at $CURL: set blumeops:tools.curl to its absolute path"

# curl_config NAME VALUE: a line of curl's config syntax, the value quoted (backslashes and quotes escaped).
curl_config() {
  local value=${2//\\/\\\\}
  printf '%s = "%s"\n' "$1" "${value//\"/\\\"}"
}

# call_curl CONFIG ARGS...: curl with the config lines CONFIG on fd 8, bounded; prints the HTTP status. A failure
# to reach the API (or to write the here-string or RESPONSE) stops the step.
call_curl() {
  local config=$1
  shift
  bounded "$BLUMEOPS_QUICK" "$CURL" -sS --connect-timeout 10 --max-time 30 -o "$RESPONSE" -w '%{http_code}' \
    --config /dev/fd/8 "$@" 8<<<"$config" ||
    die "could not reach $API_URL (or ${TMPDIR:-/tmp} is full): is the host online?"
}

# fetch_token: exchange the OAuth client's credentials for an access token (client credentials grant).
fetch_token() {
  local code config
  config=$(
    curl_config data-urlencode "grant_type=client_credentials"
    curl_config data-urlencode "client_id=$OAUTH_CLIENT_ID"
    curl_config data-urlencode "client_secret=$OAUTH_CLIENT_SECRET"
  )
  code=$(call_curl "$config" "$API_URL/api/v2/oauth/token")
  [[ "$code" == 200 ]] ||
    die "the Tailscale API refused the OAuth client $OAUTH_CLIENT_ID (HTTP $code): check" \
      "blumeops:tailnet.oauthClientId and its secret"
  TOKEN=$(json_value "$RESPONSE" access_token)
  [[ -n "$TOKEN" ]] || die "the Tailscale API answered without an access token"
}

# api METHOD [BODY_FILE]: call METHOD on the Service; prints the HTTP status, leaves the body in RESPONSE.
api() {
  local args=(-X "$1")
  [[ -z "${2:-}" ]] || args+=(-H 'Content-Type: application/json' --data-binary "@$2")
  call_curl "$(curl_config header "Authorization: Bearer $TOKEN")" "${args[@]}" "$SERVICE_URL"
}

api_failed() {
  die "$1 $SERVICE answered HTTP $2: $(head -c 300 "$RESPONSE"). A 403 means the OAuth client lacks the" \
    "services scope (write)"
}

# creation_body: the kept definition as a creation request: every IPv6 address (one with a ':') removed from
# addrs, highest index first (plutil edits the JSON in the format it read; `-o` writes a scratch copy).
creation_body() {
  local body index address
  body="$(blumeops_tmpdir)/create.json"
  cp "$SAVED" "$body" || die "cannot copy $SAVED to ${TMPDIR:-/tmp} (full?)"
  for index in 3 2 1 0; do
    address=$(json_value "$body" "addrs.$index")
    if [[ "$address" == *:* ]]; then
      bounded "$BLUMEOPS_QUICK" "$PLUTIL" -remove "addrs.$index" -o "$body" "$body" >/dev/null ||
        die "plutil could not drop the IPv6 address $address from the creation body (is ${TMPDIR:-/tmp} full?)"
    fi
  done
  printf '%s' "$body"
}

# field_value FILE FIELD: FIELD of the Service definition in FILE as the step compares it: a list or an object
# (ports, tags, annotations) as compact JSON, an empty or null one as nothing (the API may leave it out); a
# string (name, comment, addrs.0) as its raw value (plutil writes no JSON fragment).
field_value() {
  local value
  case "$2" in
  ports | tags | annotations)
    value=$(json_subtree "$1" "$2")
    case "$value" in '[]' | '{}' | '""') value="" ;; esac
    printf '%s' "$value"
    ;;
  *) json_value "$1" "$2" ;;
  esac
}

# differing_field FILE_A FILE_B FIELD...: print the first FIELD on which the definitions in FILE_A and FILE_B
# differ; fails, printing nothing, when they agree on every one.
differing_field() {
  local a=$1 b=$2 field
  shift 2
  for field in "$@"; do
    if [[ "$(field_value "$a" "$field")" != "$(field_value "$b" "$field")" ]]; then
      printf '%s' "$field"
      return 0
    fi
  done
  return 1
}

# keep_definition: keep the Service just read (RESPONSE) as the record. A record kept by an earlier run that
# differs from it (it was made again since) is moved aside first, never dropped: staged, checked and moved
# into place before the DELETE, so a failed write deletes nothing.
keep_definition() {
  local field prev
  # shellcheck disable=SC2086 # DEFINITION is a list of words
  if [[ -f "$SAVED" ]] && ! field=$(differing_field "$RESPONSE" "$SAVED" $DEFINITION addrs.0); then
    return 0 # the Service as kept: the record stands (a run again, after a DELETE that failed)
  fi
  ensure_dir "$STATE_DIR"
  chmod 0700 "$STATE_DIR" || die "cannot chmod 0700 $STATE_DIR (read-only?)"
  stage_file "$SAVED" 0600 "$(cat "$RESPONSE")"
  if [[ -f "$SAVED" ]]; then
    prev="$SAVED.$(date -u +%Y%m%dT%H%M%SZ).prev"
    [[ ! -e "$prev" ]] || prev="${prev%.prev}-$$.prev"
    BLUMEOPS_TEMPS+=("$prev.tmp")
    if ! { cp -p "$SAVED" "$prev.tmp" 2>/dev/null && cmp -s "$SAVED" "$prev.tmp" &&
      mv -f "$prev.tmp" "$prev"; }; then
      die "cannot copy $SAVED to $prev (is $STATE_DIR full or read-only?); nothing was deleted"
    fi
    commit_file "$SAVED"
    log "$SERVICE differs from the definition kept in $SAVED in its $field: it was made again since the" \
      "release that kept it; the definition deleted now is the record (a rollback recreates it), the older" \
      "one is kept aside in $prev"
  else
    commit_file "$SAVED"
    log "kept the definition of $SERVICE in $SAVED"
  fi
}

print_saved() {
  if [[ -f "$SAVED" ]]; then cat "$SAVED"; else printf 'null\n'; fi
}

step_create() {
  local code
  fetch_token
  code=$(api GET)
  case "$code" in
  200)
    keep_definition
    code=$(api DELETE)
    [[ "$code" == 200 || "$code" == 204 ]] || api_failed DELETE "$code"
    log "deleted the Tailscale Service $SERVICE: its name is free for the new owner"
    ;;
  404) log "the Tailscale Service $SERVICE does not exist: its name is free already" ;;
  *) api_failed GET "$code" ;;
  esac
  code=$(api GET)
  [[ "$code" == 404 ]] || die "$SERVICE still exists after its deletion (GET answered HTTP $code)"
  print_saved
}

# note_new_address HOW: the Service (RESPONSE) is at another IPv4 address than the kept one: said, not refused.
note_new_address() {
  if [[ "$(json_value "$RESPONSE" addrs.0)" != "$(json_value "$SAVED" addrs.0)" ]]; then
    log "note: $SERVICE $1 at $(json_value "$RESPONSE" addrs.0), not $(json_value "$SAVED" addrs.0):" \
      "clients that use the address rather than the name need the new one"
  fi
}

step_delete() {
  local code field older
  if [[ ! -f "$SAVED" ]]; then
    log "no definition of $SERVICE kept in $STATE_DIR: this step deleted nothing, so nothing to recreate"
    return 0
  fi
  fetch_token
  code=$(api GET)
  case "$code" in
  200)
    # shellcheck disable=SC2086 # DEFINITION is a list of words
    if field=$(differing_field "$RESPONSE" "$SAVED" $DEFINITION); then
      die "$SERVICE exists and differs from the definition kept in $SAVED in its $field: it was made again" \
        "by hand since the release, and the rollback does not overwrite it (nothing changed). Either delete" \
        "it in the admin console (the rollback then recreates the kept one), or, to keep it as it is, move" \
        "$SAVED away; then run again"
    fi
    log "the Tailscale Service $SERVICE exists again: leaving it as it is"
    note_new_address "is"
    ;;
  404)
    code=$(api PUT "$(creation_body)")
    [[ "$code" == 200 || "$code" == 201 ]] || api_failed PUT "$code"
    code=$(api GET)
    [[ "$code" == 200 ]] || die "$SERVICE does not exist after it was recreated (GET answered HTTP $code)"
    # shellcheck disable=SC2086 # DEFINITION is a list of words
    if field=$(differing_field "$RESPONSE" "$SAVED" name $DEFINITION); then
      die "$SERVICE was recreated, but it differs from the kept definition in $SAVED in its $field:" \
        "compare them in the admin console (the copy stays until they agree)"
    fi
    note_new_address "came back"
    log "recreated the Tailscale Service $SERVICE from $SAVED"
    ;;
  *) api_failed GET "$code" ;;
  esac
  release_file "$SAVED"  # written with commit_file: release_file also drops its adoption record
  for older in "$SAVED".*.prev; do
    if [[ -e "$older" ]]; then
      log "older definitions of $SERVICE stay in $STATE_DIR (service.json.*.prev): remove them when done"
      break
    fi
  done
  remove_empty_dir "$STATE_DIR"
}

run_action "$@"
