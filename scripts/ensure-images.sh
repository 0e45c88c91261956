#!/usr/bin/env bash
# Build the sandbox images when one of them is missing (`make images` always rebuilds, which is
# quick when nothing changed: docker's layer cache).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for dockerfile in images/*/Dockerfile; do
    name="$(basename "$(dirname "$dockerfile")")"
    [ "$name" = server ] && continue
    docker image inspect "judge/$name" >/dev/null 2>&1 || missing+=("judge/$name")
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
echo "ensure-images: missing ${missing[*]}; building the sandbox images" >&2
bash images/build.sh
