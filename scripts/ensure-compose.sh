#!/usr/bin/env bash
# Make sure `docker-compose` or the `docker compose` plugin is there (the deployment test uses
# it); installs Debian's docker-compose when neither is.
set -euo pipefail

say() { printf 'ensure-compose: %s\n' "$*" >&2; }

if command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "neither docker-compose nor the compose plugin is installed; install one and retry"
    exit 1
fi
say "installing Debian's docker-compose"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q docker-compose >/dev/null 2>&1 || {
    apt-get update -qq && apt-get install -y -q docker-compose >/dev/null
}
