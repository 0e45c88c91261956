#!/usr/bin/env bash
# The peers the benchmarks compare against, in a virtualenv of their own (never the project's,
# never in CI): DMOJ's judge 4.1.0 (native, its ptrace sandbox, the host's gcc) and epicbox
# 1.1.0 (a fresh container per test).
#
#     bash bench/dmoj/setup.sh [VENV]        # default build/bench-peers; `make bench-dmoj` too
#
# DMOJ builds C extensions: its sandbox includes <seccomp.h>, so Debian's libseccomp-dev is
# installed when missing (and the Python headers, python3-dev, with venv support). Prints the
# virtualenv's path last; pass it to `bench.judgement --peers` or `bench.side_by_side --peers`.
set -euo pipefail

VENV=${1:-build/bench-peers}
PYTHON=${PYTHON:-/usr/bin/python3}
DMOJ=dmoj==4.1.0
EPICBOX=epicbox==1.1.0

missing=()
[ -f /usr/include/seccomp.h ] || missing+=(libseccomp-dev)
"$PYTHON" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || missing+=(python3-dev)
"$PYTHON" -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
command -v gcc >/dev/null || missing+=(gcc)
command -v g++ >/dev/null || missing+=(g++)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (apt)" >&2
    # Other apt runs on a shared machine hold the lock for a while: wait for it.
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}"
fi

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
# epicbox 1.1 predates urllib3 2, which the current docker SDK would pull in.
"$VENV/bin/pip" install -q "$DMOJ" "$EPICBOX" 'urllib3<2'
"$VENV/bin/python" -c 'import dmoj.cptbox, dmoj.checkers._checker, epicbox' \
    || { echo "the peers' virtualenv $VENV does not import dmoj.cptbox and epicbox" >&2; exit 1; }
echo "$VENV"
