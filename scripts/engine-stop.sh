#!/usr/bin/env bash
# Stop the Docker engine that scripts/ensure-docker.sh started, and only that one: the pid in
# its pid file, when that process is still a dockerd. An engine started any other way (systemd,
# by hand, another project) has no such pid file and is left alone. dockerd stops its
# containers on SIGTERM; we wait for it to exit (up to JUDGE_ENGINE_STOP_S, default 60 s).
#
# JUDGE_ENGINE_DIR=/some/dir stops the private engine of that directory instead and unmounts
# what it left mounted there.
set -euo pipefail

say() { printf 'engine-stop: %s\n' "$*" >&2; }

private_dir=${JUDGE_ENGINE_DIR:-}
if [[ -n "$private_dir" ]]; then
    private_dir=$(cd "$private_dir" 2>/dev/null && pwd) || {
        say "no directory ${JUDGE_ENGINE_DIR}; nothing to stop"
        exit 0
    }
    pidfile="$private_dir/dockerd.pid"
else
    pidfile=${JUDGE_ENGINE_PIDFILE:-/var/run/dockerd-judge.pid}
fi
deadline_s=${JUDGE_ENGINE_STOP_S:-60}

unmount_private() {
    [[ -n "$private_dir" ]] || return 0
    # dockerd leaves its data root bind-mounted on itself; nothing else of it stays mounted.
    local mounts
    mounts=$(awk -v d="$private_dir/" 'index($2 "/", d) == 1 {print $2}' /proc/mounts | sort -r)
    for m in $mounts; do
        umount "$m" 2>/dev/null || umount -l "$m" || true
    done
}

if [[ ! -f "$pidfile" ]]; then
    say "no $pidfile: no engine started by make engine; leaving any other engine alone"
    unmount_private
    exit 0
fi
pid=$(cat "$pidfile")
if [[ ! "$pid" =~ ^[0-9]+$ ]] || [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" != dockerd ]]; then
    say "pid file $pidfile names no running dockerd (${pid}); removing it"
    rm -f "$pidfile"
    unmount_private
    exit 0
fi
say "stopping dockerd (pid $pid) and the containers it runs"
kill -TERM "$pid"
for _ in $(seq 1 $((deadline_s * 4))); do
    if [[ ! -d "/proc/$pid" ]] || [[ "$(cat "/proc/$pid/stat" 2>/dev/null | awk '{print $3}')" == Z ]]; then
        rm -f "$pidfile"
        unmount_private
        say "stopped"
        exit 0
    fi
    sleep 0.25
done
say "dockerd (pid $pid) still runs after ${deadline_s} s; see its log"
exit 1
