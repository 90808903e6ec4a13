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

# 3. Start the app with SQLite; --wait returns once every health check passes.
docker compose -f docker/docker-compose.prod.yml up -d --wait

# 4. Ready means: the database answers and the schema is current.
python3 -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:${NOTICEBOARD_PUBLISH:-8000}/readyz').read().decode())"
