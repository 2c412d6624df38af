#!/usr/bin/env bash
# Builds the base image localhost/debian:bookworm offline from a debootstrapped root,
# for machines that cannot pull from a container registry. Skips when the image exists.
# Usage: scripts/base-image.sh [IMAGE]   (SUITE, MIRROR may be set in the environment)
set -euo pipefail

IMAGE=${1:-localhost/debian:bookworm}
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-}

if podman image exists "$IMAGE"; then
  echo "==> base image: $IMAGE present"
  exit 0
fi

root=$(mktemp -d /var/tmp/edgeai-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "==> base image: debootstrap $SUITE into $root"
# shellcheck disable=SC2086
debootstrap --variant=minbase "$SUITE" "$root" $MIRROR >/dev/null
# Keep the image small: package lists and caches are rebuilt by any RUN apt-get update.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
echo "==> base image: built $IMAGE"
