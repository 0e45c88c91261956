#!/usr/bin/env bash
# Make sure ApacheBench (ab) is installed: bench.intake_bench drives the server with it, as the
# intake goal is stated (a benchmark tool only; no test needs it). Installs Debian's
# apache2-utils when missing.
set -euo pipefail

say() { printf 'ensure-ab: %s\n' "$*" >&2; }

if command -v ab >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "ab is not installed; install the apache2-utils package"
    exit 1
fi
say "installing Debian's apache2-utils"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q apache2-utils >/dev/null 2>&1 || {
    apt-get update -qq && apt-get install -y -q apache2-utils >/dev/null
}
