#!/usr/bin/env bash
# Make sure node and npm are installed: the WebGME executor test and the Piston door's tests run
# those projects' own JavaScript clients. Installs Debian's nodejs and npm when either is
# missing; a node already on PATH (nvm, NodeSource) is used as it is.
set -euo pipefail

say() { printf 'ensure-node: %s\n' "$*" >&2; }

if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "node and npm are not installed; install the nodejs and npm packages"
    exit 1
fi
say "installing Debian's nodejs and npm"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q nodejs npm >/dev/null 2>&1 || {
    apt-get update -qq && apt-get install -y -q nodejs npm >/dev/null
}
