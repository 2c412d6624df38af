#!/usr/bin/env bash
# Builds a Debian base image offline from a debootstrapped root, for machines that cannot pull
# from a container registry. Skips when the image exists.
# Usage: scripts/base-image.sh [--arch ARCH] [IMAGE]   (SUITE, MIRROR may be set in the environment)
#   ARCH   amd64 or arm64 (default: this machine's). Another architecture is debootstrapped with
#          --foreign and finished under qemu-user-static (binfmt_misc, see scripts/setup.sh).
#   IMAGE  default localhost/debian:bookworm for this machine's architecture,
#          localhost/debian:bookworm-ARCH for another one.
set -euo pipefail

case "$(uname -m)" in
  x86_64) host_arch=amd64 ;;
  aarch64) host_arch=arm64 ;;
  *) host_arch=$(uname -m) ;;
esac
ARCH=$host_arch
if [ "${1:-}" = --arch ]; then
  ARCH=${2:?--arch needs a value}
  shift 2
fi
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-}
if [ "$ARCH" = "$host_arch" ]; then
  IMAGE=${1:-localhost/debian:$SUITE}
else
  IMAGE=${1:-localhost/debian:$SUITE-$ARCH}
fi

if podman image exists "$IMAGE"; then
  echo "==> base image: $IMAGE present"
  exit 0
fi

root=$(mktemp -d /var/tmp/edgeai-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
if [ "$ARCH" = "$host_arch" ]; then
  echo "==> base image: debootstrap $SUITE into $root"
  # shellcheck disable=SC2086
  debootstrap --variant=minbase "$SUITE" "$root" $MIRROR >/dev/null
else
  # The second stage runs the target's own binaries: the kernel hands them to qemu.
  [ -e "/proc/sys/fs/binfmt_misc/qemu-${ARCH/arm64/aarch64}" ] \
    || { echo "base-image: no binfmt_misc handler for $ARCH (qemu-user-static; see scripts/setup.sh)" >&2; exit 2; }
  echo "==> base image: debootstrap --arch=$ARCH $SUITE into $root (second stage emulated)"
  # shellcheck disable=SC2086
  debootstrap --variant=minbase --arch="$ARCH" --foreign "$SUITE" "$root" $MIRROR >/dev/null
  chroot "$root" /debootstrap/debootstrap --second-stage >/dev/null
fi
# Keep the image small: package lists and caches are rebuilt by any RUN apt-get update.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | podman import --arch "$ARCH" --os linux \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
echo "==> base image: built $IMAGE"
