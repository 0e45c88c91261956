#!/usr/bin/env bash
# Create or refresh the project's virtualenv (default .venv) with the package and its dev tools.
#
#   scripts/ensure-venv.sh [VENV]
#
# Nothing goes into the system interpreter (PEP 668 systems refuse that anyway). The venv's pip
# reads the machine's pip configuration (/etc/pip.conf, PIP_* variables) like any other pip, so
# a mirror or a local index configured for the host is used. The Makefile calls this only when
# pyproject.toml is newer than the venv's stamp file.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${1:-.venv}"
python="${PYTHON:-python3}"
say() { printf 'ensure-venv: %s\n' "$*" >&2; }

if ! command -v "$python" >/dev/null 2>&1; then
    say "$python not found; install Python 3.11 or newer" && exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    say "$("$python" --version) is too old; the judge needs Python 3.11 or newer" && exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
    # Debian ships venv (ensurepip) in a separate package.
    if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
        rm -rf "$venv"
        if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
            say "'$python -m venv' failed; install your distribution's python3-venv and retry"
            exit 1
        fi
        ver="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        say "installing python${ver}-venv"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q "python${ver}-venv" >/dev/null 2>&1 || apt-get install -y -q python3-venv >/dev/null 2>&1 || {
            apt-get update -qq
            apt-get install -y -q "python${ver}-venv" >/dev/null 2>&1 || apt-get install -y -q python3-venv >/dev/null
        }
        "$python" -m venv "$venv"
    fi
    say "created $venv"
fi
# The server with its dev tools, and the `judge` client, its own distribution (client/).
say "installing the project into $venv (pip install -e '.[dev]' -e ./client)"
"$venv/bin/python" -m pip install -q -e '.[dev]' -e ./client
