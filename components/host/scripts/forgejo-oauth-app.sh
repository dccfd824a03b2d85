# ---- components/host/scripts/forgejo-oauth-app.sh: the forge's OAuth2 application for a client, by its name ----
# create: finds the OAuth2 application APP_NAME of the token's user through the forge's API (FORGE_URL/api/v1/
#         user/applications/oauth2, every page); when there is one it is adopted: updated to REDIRECT_URI and
#         confidential, which makes the forge issue a new client secret (it never shows an old one); otherwise
#         it is created. Prints {"id", "client_id", "client_secret"} as one line of JSON on stdout (a secret
#         output; nothing else goes to stdout). The token (TOKEN, a secret on stdin) reaches curl in a 0600
#         config file of scratch, never on its command line.
# delete: deletes the application APP_NAME (found by name again: the delete knows only the preamble); none left
#         is fine.
# Preamble: FORGE_URL APP_NAME REDIRECT_URI CURL JQ TOKEN (secret)

# api METHOD PATH [BODY]: the forge's answer body on stdout; HTTP_STATUS its status. 401/403 stop the step with
# what to fix; any other status >= 400 too.
HTTP_STATUS=""
api() {
  local method=$1 path=$2 body=${3:-} scratch config out status=0
  scratch=$(blumeops_tmpdir)
  config="$scratch/curl.config" out="$scratch/answer"
  (umask 077 && printf 'header = "Authorization: token %s"\n' "$TOKEN" >"$config")
  local args=(-sS -K "$config" -o "$out" -w '%{http_code}' --max-time 30 -X "$method" -H 'Accept: application/json')
  if [[ -n "$body" ]]; then
    printf '%s' "$body" >"$scratch/body"
    args+=(-H 'Content-Type: application/json' --data-binary "@$scratch/body")
  fi
  HTTP_STATUS=$(bounded "$BLUMEOPS_QUICK" "$CURL" "${args[@]}" "$FORGE_URL/api/v1$path") || status=$?
  rm -f "$config"
  ((status == 0)) || die "\`curl $method $FORGE_URL/api/v1$path\` failed (curl exit $status): is the forge serving at" \
    "$FORGE_URL?"
  case "$HTTP_STATUS" in
  401 | 403) die "the forge refuses the token (HTTP $HTTP_STATUS on $method $path): set blumeops:woodpecker.forgejoToken" \
    "to a token of the forge's admin with the scope write:user ($FORGE_URL/user/settings/applications)" ;;
  2??) cat "$out" ;;
  *) die "the forge answered HTTP $HTTP_STATUS to $method $path: $(head -c 300 "$out" 2>/dev/null)" ;;
  esac
}

# find_app: the id of the application named APP_NAME, or nothing.
find_app() {
  local page=1 answer found
  while ((page <= 100)); do
    answer=$(api GET "/user/applications/oauth2?page=$page&limit=50")
    found=$(printf '%s' "$answer" | "$JQ" -r --arg name "$APP_NAME" \
      'if type == "array" then (map(select(.name == $name)) | first | .id // empty) else error("not a list") end' \
      2>/dev/null) || die "the forge's list of OAuth2 applications is not a JSON list"
    if [[ -n "$found" ]]; then
      printf '%s' "$found"
      return 0
    fi
    [[ "$(printf '%s' "$answer" | "$JQ" 'length')" -ge 50 ]] || return 0
    page=$((page + 1))
  done
}

step_create() {
  local id body answer
  body=$("$JQ" -cn --arg name "$APP_NAME" --arg uri "$REDIRECT_URI" \
    '{name: $name, redirect_uris: [$uri], confidential_client: true}')
  id=$(find_app)
  if [[ -n "$id" ]]; then
    answer=$(api PATCH "/user/applications/oauth2/$id" "$body")
    log "adopted the OAuth2 application $APP_NAME (id $id): redirect $REDIRECT_URI, a new client secret"
  else
    answer=$(api POST "/user/applications/oauth2" "$body")
    log "created the OAuth2 application $APP_NAME: redirect $REDIRECT_URI"
  fi
  printf '%s' "$answer" | "$JQ" -ce 'select(.client_id and .client_secret) | {id, client_id, client_secret}' ||
    die "the forge's answer holds no client_id and client_secret"
}

step_delete() {
  local id
  id=$(find_app)
  if [[ -z "$id" ]]; then
    log "no OAuth2 application $APP_NAME on the forge: nothing to delete"
    return 0
  fi
  api DELETE "/user/applications/oauth2/$id" >/dev/null
  log "deleted the OAuth2 application $APP_NAME (id $id)"
}

run_action "$@"
