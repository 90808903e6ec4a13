#!/usr/bin/env bash
# Quick start with Docker alone: build the image, configure, start, check.
# Run from the repository root. tests/docs runs this very file on the test-bed,
# with NB_BUILD_FLAGS=--testbed (local Debian bases) and its own project name.
set -euo pipefail

# 1. The image, for this machine's architecture.
read -ra build_flags <<< "${NB_BUILD_FLAGS:-}"
docker/build.py "${build_flags[@]}" --tag noticeboard:latest

# 2. Settings: start from the example and set a strong secret key.
cp docker/.env.docker.example docker/.env
echo "SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')" >> docker/.env

# 3. The first admin's password, a Compose secret only the migrate job reads. The app
#    runs as uid 10001 and must read the file; the 0700 directory keeps others out.
install -d -m 700 docker/secrets
python3 -c 'import secrets; print(secrets.token_urlsafe(18))' > docker/secrets/admin_password
chmod 644 docker/secrets/admin_password
echo "Sign in as admin with the password in docker/secrets/admin_password"

# 4. Start the app with SQLite; --wait returns once every health check passes.
docker compose -f docker/docker-compose.prod.yml up -d --wait

# 5. Ready means: the database answers and the schema is current.
base="http://127.0.0.1:${NOTICEBOARD_PUBLISH:-8000}"
python3 -c "import urllib.request as u; print(u.urlopen('$base/readyz').read().decode())"

# 6. Notes are for people who signed in: 401 without a session, 200 with the admin's.
python3 - "$base" <<'PY'
import http.cookiejar, json, sys, urllib.error, urllib.request as u

base = sys.argv[1]
try:
    u.urlopen(f"{base}/api/notes")
except urllib.error.HTTPError as refused:
    print("signed out:", refused.code)
browser = u.build_opener(u.HTTPCookieProcessor(http.cookiejar.CookieJar()))
password = open("docker/secrets/admin_password").read().strip()
browser.open(u.Request(
    f"{base}/api/session",
    json.dumps({"username": "admin", "password": password}).encode(),
    {"Content-Type": "application/json", "X-Requested-With": "quickstart"},
))
print("signed in:", browser.open(f"{base}/api/notes").status)
PY
