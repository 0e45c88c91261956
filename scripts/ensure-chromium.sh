#!/usr/bin/env bash
# Make sure a chromium is installed for the playground's browser tests (tests/browser). They
# drive Debian's chromium through Playwright's executable_path: Playwright's own browser
# downloads are never used (they come from outside the package registries). Installs Debian's
# chromium when neither JUDGE_TEST_CHROMIUM nor /usr/bin/chromium is there.
set -euo pipefail

say() { printf 'ensure-chromium: %s\n' "$*" >&2; }

if [ -x "${JUDGE_TEST_CHROMIUM:-/usr/bin/chromium}" ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "chromium is not installed; install it (or set JUDGE_TEST_CHROMIUM); the browser tests skip"
    exit 0
fi
say "installing Debian's chromium"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q chromium >/dev/null 2>&1 || {
    apt-get update -qq && apt-get install -y -q chromium >/dev/null
}
