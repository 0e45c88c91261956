#!/usr/bin/env bash
# Build the sandbox images without a registry.
#
#   images/build.sh [NAME...]     (default: base default)
#
# judge/rootfs  Debian bookworm root file system made by mmdebstrap from this host's own apt
#               sources, piped into `docker import` (no registry needed). Skipped when
#               BASE_IMAGE is set (e.g. BASE_IMAGE=debian:bookworm-slim on hosts with a registry).
# judge/base    rootfs + the static supervisor + the unprivileged `sandbox` user (uid 10001).
# judge/<name>  images/<name>/Dockerfile built FROM judge/base.
#
# Rebuilding when nothing changed is fast: the rootfs is only made when the image is missing
# (REBUILD_ROOTFS=1 forces it) and `docker build` reuses its layer cache.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
suite="${DEBIAN_SUITE:-bookworm}"
rootfs_tag="judge/rootfs:${suite}"
log() { echo "images: $*" >&2; }

docker_build() {
    # The Debian engine has no buildx plugin; the classic builder does what we need.
    if docker buildx version >/dev/null 2>&1; then
        docker build "$@"
    else
        DOCKER_BUILDKIT=0 docker build "$@"
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
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap >/dev/null
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

build_image() {
    local name="$1" base="${BASE_IMAGE:-$rootfs_tag}"
    log "building judge/${name}"
    if [ "$name" = base ]; then
        docker_build -q -t judge/base --build-arg "BASE_IMAGE=${base}" \
            -f "$here/base/Dockerfile" "$here" >/dev/null
    else
        docker_build -q -t "judge/${name}" "$here/${name}" >/dev/null
    fi
}

names=("$@")
[ "${#names[@]}" -eq 0 ] && names=(base default)
build_rootfs
for n in "${names[@]}"; do
    if [ "$n" != base ] && ! docker image inspect judge/base >/dev/null 2>&1; then
        build_image base
    fi
    build_image "$n"
done
log "done: $(docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' 'judge/*' | tr '\n' ' ')"
