#!/usr/bin/env bash
# Smoke test of a running Coffer: deploy/smoke.sh BASE_URL (e.g. http://127.0.0.1:8000).
#
# Walks the API the way a user would: register, login, upload, wait for the file to be
# ready, details, list, download, delete, logout, and an anonymous call refused. Exits 1
# at the first surprise, saying which step and what came back.
#
# Each run registers a new organization "Smoke <timestamp>" with one user
# (smoke-<timestamp>@example.com) and deletes the file it uploaded; the account stays
# (`python manage.py users deactivate EMAIL` disables it).
#
# Needs bash, curl and python3. SMOKE_TIMEOUT (default 60) bounds the wait for the
# validation job, in seconds.
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
  echo "usage: $0 BASE_URL" >&2
  exit 2
fi
BASE_URL=${1%/}
TIMEOUT=${SMOKE_TIMEOUT:-60}
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed" >&2; exit 2; }
done

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
JAR="$WORK/cookies"
STAMP="$(date +%s)-$RANDOM"
EMAIL="smoke-$STAMP@example.com"
PASSWORD="smoke-$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
ORG="Smoke $STAMP"
STEP=""
STATUS=""

fail() {
  echo "FAIL [$STEP]: $*" >&2
  if [[ -s "$WORK/body" ]]; then
    echo "response body: $(head -c 500 "$WORK/body")" >&2
  fi
  exit 1
}

ok() {
  echo "ok   [$STEP] $*"
}

# call METHOD PATH [curl args...]: sets STATUS, leaves the body in $WORK/body.
call() {
  local method=$1 path=$2
  shift 2
  : >"$WORK/body"
  STATUS=$(curl -sS --max-time 60 -o "$WORK/body" -w '%{http_code}' \
    -b "$JAR" -c "$JAR" -X "$method" "$@" "$BASE_URL$path") ||
    fail "$method $path: no HTTP answer (curl exit $?)"
}

expect() {
  [[ "$STATUS" == "$1" ]] || fail "expected HTTP $1, got $STATUS"
}

# field NAME: a top-level field of the JSON body; fails the step if there is none.
field() {
  python3 - "$WORK/body" "$1" <<'PY' || fail "the response has no field '$1' (or is not JSON)"
import json, sys
value = json.load(open(sys.argv[1]))[sys.argv[2]]
print(json.dumps(value) if isinstance(value, (dict, list)) else value)
PY
}

json_body() {
  python3 -c 'import json, sys; print(json.dumps(dict(zip(sys.argv[1::2], sys.argv[2::2]))))' "$@"
}

STEP="health"
call GET /healthz
expect 200
[[ "$(field status)" == "ok" ]] || fail "status is not ok"
ok "the service answers"

STEP="register"
call POST /api/auth/register -H 'Content-Type: application/json' \
  --data "$(json_body email "$EMAIL" password "$PASSWORD" organization_name "$ORG")"
expect 201
[[ "$(field role)" == "admin" ]] || fail "the first user of a new organization is not its admin"
ok "registered $EMAIL in \"$ORG\""

STEP="login"
rm -f "$JAR"
call POST /api/auth/login -H 'Content-Type: application/json' \
  --data "$(json_body email "$EMAIL" password "$PASSWORD")"
expect 200
CSRF=$(field csrf_token)
call GET /api/auth/me
expect 200
[[ "$(field email)" == "$EMAIL" ]] || fail "/api/auth/me names someone else"
ok "logged in"

STEP="upload"
printf 'Coffer smoke test %s\nline two\n' "$STAMP" >"$WORK/smoke.txt"
call POST /api/files/upload -H "X-CSRF-Token: $CSRF" -F "file=@$WORK/smoke.txt;filename=smoke.txt"
expect 201
FILE_ID=$(field file_id)
[[ "$(field status)" == "pending" ]] || fail "a new upload is not pending"
ok "uploaded smoke.txt as $FILE_ID"

STEP="wait for ready"
deadline=$((SECONDS + TIMEOUT))
while :; do
  call GET "/api/files/$FILE_ID"
  expect 200
  state=$(field status)
  case "$state" in
    ready) break ;;
    failed) fail "validation failed: $(field error_message)" ;;
  esac
  ((SECONDS < deadline)) || fail "still $state after ${TIMEOUT}s: are the workers running?"
  sleep 0.5
done
ok "validated"

STEP="details"
call GET "/api/files/$FILE_ID"
expect 200
[[ "$(field filename)" == "smoke.txt" ]] || fail "wrong filename"
[[ "$(field size)" == "$(wc -c <"$WORK/smoke.txt" | tr -d ' ')" ]] || fail "wrong size"
[[ "$(field mime_type)" == "text/plain" ]] || fail "wrong MIME type"
expected_sha=$(python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$WORK/smoke.txt")
[[ "$(field sha256)" == "$expected_sha" ]] || fail "wrong sha256"
ok "name, size, type and sha256 match"

STEP="list"
call GET "/api/files?page=1&limit=20"
expect 200
[[ "$(field total)" == "1" ]] || fail "the new organization does not list exactly one file"
python3 - "$WORK/body" "$FILE_ID" <<'PY' || fail "the file is not listed"
import json, sys
files = json.load(open(sys.argv[1]))["files"]
sys.exit(0 if [f["id"] for f in files] == [sys.argv[2]] else 1)
PY
ok "listed"

STEP="download"
call GET "/api/files/$FILE_ID/download"
expect 200
cmp -s "$WORK/body" "$WORK/smoke.txt" || fail "the downloaded bytes differ from the upload"
ok "the bytes come back unchanged"

STEP="delete"
call DELETE "/api/files/$FILE_ID" -H "X-CSRF-Token: $CSRF"
expect 204
call GET "/api/files/$FILE_ID"
expect 404
ok "deleted"

STEP="logout"
cp "$JAR" "$WORK/before-logout"
call POST /api/auth/logout -H "X-CSRF-Token: $CSRF"
expect 200
JAR="$WORK/before-logout"
call GET /api/auth/me
expect 401
ok "logged out; the old session no longer works"

STEP="anonymous"
rm -f "$JAR"
call GET /api/files
expect 401
[[ "$(field code)" == "unauthorized" ]] || fail "the refusal is not the JSON 401"
ok "an anonymous call is refused"

echo "smoke test passed against $BASE_URL"
