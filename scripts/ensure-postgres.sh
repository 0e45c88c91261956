#!/usr/bin/env bash
# Make sure PostgreSQL's server programs are installed (the store tests and the two-node tests
# start a throwaway cluster from them; nothing is started here). Installs Debian's postgresql
# when they are missing and JUDGE_TEST_DATABASE_URL does not name a server to use instead.
set -euo pipefail

say() { printf 'ensure-postgres: %s\n' "$*" >&2; }

if [ -n "${JUDGE_TEST_DATABASE_URL:-}" ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "PostgreSQL is not installed; install the postgresql package (or set JUDGE_TEST_DATABASE_URL)"
    exit 1
fi
say "installing Debian's postgresql"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q postgresql >/dev/null 2>&1 || {
    apt-get update -qq && apt-get install -y -q postgresql >/dev/null
}
