#!/usr/bin/env bash
# Build the sandbox images without a registry.
#
#   images/build.sh [NAME...]     (default: every sandbox image: base, default and each
#                                  images/<name>/Dockerfile except server)
#
# judge/rootfs  Debian bookworm root file system made by mmdebstrap from this host's own apt
#               sources, piped into `docker import` (no registry needed). Skipped when
#               BASE_IMAGE is set (e.g. BASE_IMAGE=debian:bookworm-slim on hosts with a registry).
# judge/base    rootfs + the static supervisor + the unprivileged users `sandbox` (uid 10001)
#               and `interactor` (uid 10002, an interactive execute's interactor).
# judge/<name>  images/<name>/Dockerfile built FROM judge/base; when images/<name>/languages.json
#               exists, images/languages.py probes each language's version in the built image
#               and adds the labels judge.languages* (skipped when neither changed).
# judge/server  the judge server itself (images/server/Dockerfile, FROM the rootfs or BASE_IMAGE):
#               the project and its dependencies are made into wheels on this host with its own
#               pip (`pip wheel`), so the image build needs no package index. Not built by default.
#
# Rebuilding when nothing changed is fast: the rootfs is only made when the image is missing
# (REBUILD_ROOTFS=1 forces it) and `docker build` reuses its layer cache.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
suite="${DEBIAN_SUITE:-bookworm}"
rootfs_tag="judge/rootfs:${suite}"
log() { echo "images: $*" >&2; }

docker_build() {
    # The Debian engine has no buildx plugin; the classic builder does what we need. The host's
    # network: RUN steps reach the same apt mirror the host uses, also on an engine whose
    # default bridge is missing or disabled.
    if docker buildx version >/dev/null 2>&1; then
        docker build --network host "$@"
    else
        DOCKER_BUILDKIT=0 docker build --network host "$@"
    fi
}

host_sources() {
    # mmdebstrap pastes a MIRROR argument that names an existing file into the chroot's
    # sources list, so the image uses exactly the mirror this host uses.
    local f out=()
    [ -s /etc/apt/sources.list ] && out+=(/etc/apt/sources.list)
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
        [ -s "$f" ] && out+=("$f")
    done
    printf '%s\n' "${out[@]}"
}

build_rootfs() {
    if [ -n "${BASE_IMAGE:-}" ]; then
        log "BASE_IMAGE=${BASE_IMAGE}: not building a root file system"
        return
    fi
    if [ -z "${REBUILD_ROOTFS:-}" ] && docker image inspect "$rootfs_tag" >/dev/null 2>&1; then
        log "${rootfs_tag} present (REBUILD_ROOTFS=1 to rebuild)"
        return
    fi
    if ! command -v mmdebstrap >/dev/null 2>&1; then
        log "installing mmdebstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap >/dev/null 2>&1 || {
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap >/dev/null
        }
    fi
    mapfile -t sources < <(host_sources)
    if [ "${#sources[@]}" -eq 0 ]; then
        log "no apt sources on this host; set BASE_IMAGE to an image from a registry" && exit 1
    fi
    log "building ${rootfs_tag} with mmdebstrap from ${sources[*]}"
    local tmp
    tmp="$(mktemp)"
    trap 'rm -f "$tmp"' RETURN
    mmdebstrap --quiet --variant=minbase --format=tar --include=ca-certificates \
        "$suite" "$tmp" "${sources[@]}"
    docker import --change 'CMD ["/bin/bash"]' "$tmp" "$rootfs_tag" >/dev/null
}

build_server() {
    local base="${BASE_IMAGE:-$rootfs_tag}" ctx
    ctx="$(mktemp -d)"
    local root
    root="$(dirname "$here")"
    log "building judge/server (wheels of the project from ${root})"
    # A copy of the sources, so the wheel build leaves nothing (build/) in the tree.
    mkdir "$ctx/src"
    cp -r "$root/pyproject.toml" "$root/README.md" "$root/service" "$root/orchestrator" "$ctx/src/"
    # The project's virtualenv has pip even where the system Python has none (PEP 668 hosts).
    local python="${PYTHON:-python3}"
    [ -z "${PYTHON:-}" ] && [ -x "$root/.venv/bin/python" ] && python="$root/.venv/bin/python"
    if ! { "$python" -m pip wheel -q --prefer-binary -w "$ctx/wheels" "$ctx/src" >&2 \
        && docker_build -q -t judge/server --build-arg "BASE_IMAGE=${base}" \
            -f "$here/server/Dockerfile" "$ctx" >/dev/null; }; then
        rm -rf "$ctx"
        return 1
    fi
    rm -rf "$ctx"
}

build_image() {
    local name="$1" base="${BASE_IMAGE:-$rootfs_tag}"
    if [ "$name" = server ]; then
        build_server
        return
    fi
    log "building judge/${name}"
    if [ "$name" = base ]; then
        docker_build -q -t judge/base --build-arg "BASE_IMAGE=${base}" \
            -f "$here/base/Dockerfile" "$here" >/dev/null
    elif [ -f "$here/${name}/languages.json" ]; then
        local built
        built="$(docker_build -q "$here/${name}")"
        python3 "$here/languages.py" "$name" "$built"
    else
        docker_build -q -t "judge/${name}" "$here/${name}" >/dev/null
    fi
}

names=("$@")
if [ "${#names[@]}" -eq 0 ]; then
    names=(base default)
    for d in "$here"/*/Dockerfile; do
        n="$(basename "$(dirname "$d")")"
        case "$n" in base | default | server) ;; *) names+=("$n") ;; esac
    done
fi
build_rootfs
for n in "${names[@]}"; do
    if [ "$n" != base ] && [ "$n" != server ] && ! docker image inspect judge/base >/dev/null 2>&1; then
        build_image base
    fi
    build_image "$n"
done
log "done: $(docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' 'judge/*' | tr '\n' ' ')"
