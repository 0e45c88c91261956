#!/usr/bin/env bash
# Make sure a Docker engine answers. An engine that already answers (local
# socket or DOCKER_HOST) is left alone; otherwise Debian's docker.io is
# installed if missing and dockerd is started in the background with runc.
set -euo pipefail

say() { printf 'ensure-docker: %s\n' "$*" >&2; }

engine_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if engine_answers; then
    say "engine $(docker version --format '{{.Server.Version}}') already answers; leaving it alone"
    exit 0
fi
if [[ -n "${DOCKER_HOST:-}" ]]; then
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

log=${DOCKERD_LOG:-/var/log/dockerd-judge.log}
say "starting dockerd in the background (log: $log)"
# runc, because crun is not dependable on every host we target.
nohup dockerd --default-runtime=runc >"$log" 2>&1 &
for _ in $(seq 1 120); do
    if engine_answers; then
        say "engine $(docker version --format '{{.Server.Version}}') is up"
        exit 0
    fi
    sleep 0.5
done
say "dockerd did not answer within 60 s; last log lines:"
tail -n 20 "$log" >&2 || true
exit 1
