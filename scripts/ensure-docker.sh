#!/usr/bin/env bash
# Make sure a Docker engine answers. An engine that already answers (local
# socket or DOCKER_HOST) is left alone; otherwise Debian's docker.io is
# installed if missing and dockerd is started with runc, in a session of its own
# (setsid): Ctrl-C on `make run`, or a process manager stopping it, does not reach
# the engine or the sandboxes it runs. Only an engine started here is recorded
# (its pid file), so `make engine-stop` (scripts/engine-stop.sh) stops that one and
# never an engine somebody else runs.
#
# JUDGE_ENGINE_DIR=/some/dir starts a private engine instead, everything in that
# directory: socket (docker.sock), data root, exec root, pid file and log; no
# bridge and no iptables rules, so it does not disturb another engine on the host.
# The fault tests (tests/faults) use it; `DOCKER_HOST=unix://$dir/docker.sock`
# talks to it.
#
# When JUDGE_RUNTIMES (comma-separated, e.g. "runc,runsc") names runsc, gVisor is
# installed (Debian's runsc) if missing and registered with the engine: added to
# /etc/docker/daemon.json (other keys kept) and picked up with SIGHUP, never a
# restart. An engine that already offers runsc is left alone.
set -euo pipefail

say() { printf 'ensure-docker: %s\n' "$*" >&2; }

private_dir=${JUDGE_ENGINE_DIR:-}
if [[ -n "$private_dir" ]]; then
    mkdir -p "$private_dir"
    private_dir=$(cd "$private_dir" && pwd)
    export DOCKER_HOST="unix://$private_dir/docker.sock"
    pidfile="$private_dir/dockerd.pid"
    log=${DOCKERD_LOG:-$private_dir/dockerd.log}
else
    pidfile=${JUDGE_ENGINE_PIDFILE:-/var/run/dockerd-judge.pid}
    log=${DOCKERD_LOG:-/var/log/dockerd-judge.log}
fi

engine_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

wants_runsc() { [[ ",${JUDGE_RUNTIMES:-}," == *,runsc,* ]]; }

engine_has_runsc() { docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; }

# Registers gVisor with a running local engine: idempotent, and a no-op when it is there.
ensure_runsc() {
    if engine_has_runsc; then
        say "engine already offers runsc; leaving it alone"
        return 0
    fi
    if [[ -n "${DOCKER_HOST:-}" ]]; then
        say "runsc requested but DOCKER_HOST=$DOCKER_HOST is remote: register it there yourself"
        return 1
    fi
    if [[ $(id -u) -ne 0 ]]; then
        say "registering runsc needs root; see docs/interactive.md"
        return 1
    fi
    if ! command -v runsc >/dev/null 2>&1; then
        say "installing Debian's runsc (gVisor)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq runsc >/dev/null 2>&1 || {
            apt-get update -qq && apt-get install -y -qq runsc >/dev/null
        }
    fi
    local conf=/etc/docker/daemon.json
    mkdir -p /etc/docker
    # Merge, keeping every key already there; --network=none because runsc's own network
    # stack does not start on every host, and sandboxes have no network anyway.
    python3 - "$conf" "$(command -v runsc)" <<'PY'
import json, os, sys
path, binary = sys.argv[1], sys.argv[2]
try:
    with open(path) as f:
        doc = json.load(f)
except FileNotFoundError:
    doc = {}
doc.setdefault("runtimes", {})["runsc"] = {"path": binary, "runtimeArgs": ["--network=none"]}
tmp = path + ".judge-tmp"
with open(tmp, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
os.replace(tmp, path)
PY
    local pid
    if [[ -n "$private_dir" ]]; then
        say "a private engine ($private_dir) does not read $conf; not registering runsc there"
        return 1
    fi
    pid=$(pidof dockerd || true)
    if [[ -z "$pid" ]]; then
        say "no local dockerd process to reload; restart your engine to pick up $conf"
        return 1
    fi
    say "registered runsc in $conf; reloading dockerd (SIGHUP, no restart)"
    kill -HUP $pid
    for _ in $(seq 1 40); do
        if engine_has_runsc; then
            say "engine now offers runsc"
            return 0
        fi
        sleep 0.25
    done
    say "dockerd did not pick up runsc; check $conf"
    return 1
}

finish() {
    if wants_runsc; then
        ensure_runsc
    fi
    exit 0
}

if engine_answers; then
    say "engine $(docker version --format '{{.Server.Version}}') already answers; leaving it alone"
    finish
fi
if [[ -n "${DOCKER_HOST:-}" && -z "$private_dir" ]]; then
    say "DOCKER_HOST=$DOCKER_HOST is set but does not answer; not starting a local engine"
    exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
    say "no engine answers and starting one needs root; start Docker and retry"
    exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
    say "installing Debian's docker.io"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq docker.io >/dev/null
fi
if ! command -v docker >/dev/null 2>&1; then
    say "docker client missing after install"; exit 1
fi

args=(--default-runtime=runc --pidfile "$pidfile")
if [[ -n "$private_dir" ]]; then
    [[ -f "$private_dir/daemon.json" ]] || echo '{}' >"$private_dir/daemon.json"
    # Its own everything; cgroup-parent keeps its containers' cgroups apart from the host
    # engine's /docker/<id> ones.
    args+=(--host "$DOCKER_HOST" --data-root "$private_dir/data" --exec-root "$private_dir/exec"
        --config-file "$private_dir/daemon.json" --bridge none --iptables=false --ip-masq=false
        --cgroup-parent /judge-private-engine)
fi
# Pid files left by an engine that died are stale: dockerd refuses to start over its own, and
# waits in vain for the containerd its old one names. A dead process may linger as a zombie
# where nothing reaps orphans (some containers' init), so kill -0 is not enough.
clear_stale() { # pidfile command-name
    [[ -f "$1" ]] || return 0
    local pid state
    pid=$(cat "$1")
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
    if [[ -z "$state" || "$state" == Z || "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$2" ]]; then
        say "removing the stale pid file $1"
        rm -f "$1"
    fi
}
clear_stale "$pidfile" dockerd
if [[ -n "$private_dir" ]]; then
    clear_stale "$private_dir/exec/containerd/containerd.pid" containerd
else
    clear_stale /var/run/docker/containerd/containerd.pid containerd
fi
mkdir -p "$(dirname "$log")"
say "starting dockerd in its own session (log: $log, pid file: $pidfile)"
# runc, because crun is not dependable on every host we target. setsid -f forks it into a
# new session: no controlling terminal, not in the caller's process group, so a signal sent
# to make's group (Ctrl-C) does not reach it. stdin from /dev/null so it holds no pipe of
# the caller's open.
# A private engine also gets a network namespace of its own: a dockerd started with
# --bridge none deletes any link named docker0 it can see (moby's removeDefaultBridgeInterface),
# which would take the host engine's bridge away. Its sandboxes have no network anyway, and its
# Unix socket is a file, reachable from every namespace.
netns=()
[[ -n "$private_dir" ]] && netns=(unshare --net)
setsid -f "${netns[@]}" dockerd "${args[@]}" >>"$log" 2>&1 </dev/null
for _ in $(seq 1 240); do
    if engine_answers; then
        say "engine $(docker version --format '{{.Server.Version}}') is up (pid $(cat "$pidfile"))"
        finish
    fi
    sleep 0.25
done
say "dockerd did not answer within 60 s; last log lines:"
tail -n 20 "$log" >&2 || true
exit 1
