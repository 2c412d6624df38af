#!/usr/bin/env bash
# A throw-away Debian root for the host-role tests (molecule scenarios and tests/roles).
# The debootstrap runs once and is cached as a tarball; every scenario unpacks a fresh copy.
#   debian-root.sh tarball        -> prints the cached tarball's path (builds it when missing)
#   debian-root.sh unpack DIR     -> a fresh root in DIR (removed first), /etc/hosts included
#   debian-root.sh remove DIR     -> removes DIR
#   debian-root.sh dress DIR OS   -> makes the root look like a device of the support matrix, for
#                                    Ansible's facts: rhel9, rhel9-image (rpm-ostree/bootc),
#                                    rhel9-jetson, jetpack (Ubuntu 22.04 L4T), ubuntu24, fedora41,
#                                    debian12 (as it is). Jetsons get the GPU's /dev/nvmap in group video.
# Environment: EDGEAI_CACHE (default ~/.cache/edgeai-appliance), SUITE, MIRROR.
set -euo pipefail

CACHE=${EDGEAI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgeai-appliance}
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-}
# python3: Ansible's modules run inside the root; iproute2: the default IPv4 fact.
PACKAGES=python3,iproute2
TARBALL="$CACHE/debian-$SUITE-hostroles.tar"

build_tarball() {
  [ -s "$TARBALL" ] && return
  mkdir -p "$CACHE"
  local tmp
  tmp=$(mktemp -d /var/tmp/edgeai-debootstrap.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  echo "==> debootstrap $SUITE (+$PACKAGES) into $tmp, cached as $TARBALL" >&2
  # shellcheck disable=SC2086
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$tmp" $MIRROR >/dev/null
  rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*
  tar -C "$tmp" -cf "$TARBALL.partial" .
  mv "$TARBALL.partial" "$TARBALL"
}

unpack() {
  local dir=$1
  build_tarball
  rm -rf "$dir"
  mkdir -p "$dir"
  tar -C "$dir" -xf "$TARBALL"
  # debootstrap writes no /etc/hosts; a real device has one with lines the roles must keep.
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n192.0.2.99\tntp.site.example\n' \
    > "$dir/etc/hosts"
}

os_release() {
  local dir=$1 id=$2 version=$3 name=$4 like=${5:-}
  # Debian's /etc/os-release is a link to /usr/lib/os-release: replace both.
  rm -f "$dir/etc/os-release" "$dir/usr/lib/os-release" "$dir/etc/debian_version"
  printf 'NAME="%s"\nID="%s"\nVERSION_ID="%s"\nPRETTY_NAME="%s %s"\n' "$name" "$id" "$version" "$name" "$version" \
    > "$dir/etc/os-release"
  if [ -n "$like" ]; then printf 'ID_LIKE="%s"\n' "$like" >> "$dir/etc/os-release"; fi
}

jetson_gpu() {
  # The node's type does not matter to the roles, only its group (root:video 0660 on L4T).
  local dir=$1
  touch "$dir/dev/nvmap"
  chgrp "$(awk -F: '$1 == "video" {print $3}' "$dir/etc/group")" "$dir/dev/nvmap"
  chmod 0660 "$dir/dev/nvmap"
}

dress() {
  local dir=$1 os=$2
  case "$os" in
    rhel9|rhel9-image|rhel9-jetson)
      os_release "$dir" rhel 9.4 "Red Hat Enterprise Linux" fedora
      echo "Red Hat Enterprise Linux release 9.4 (Plow)" > "$dir/etc/redhat-release"
      if [ "$os" = rhel9-image ]; then mkdir -p "$dir/run" && touch "$dir/run/ostree-booted"; fi
      if [ "$os" = rhel9-jetson ]; then
        # RHEL on a Jetson has no Tegra release file: its device tree names the SoC.
        mkdir -p "$dir/proc/device-tree"
        printf 'nvidia,p3737-0000+p3701-0005\0nvidia,p3701-0005\0nvidia,tegra234\0' > "$dir/proc/device-tree/compatible"
        jetson_gpu "$dir"
      fi ;;
    jetpack)
      os_release "$dir" ubuntu 22.04 Ubuntu debian
      echo "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64" > "$dir/etc/nv_tegra_release"
      touch "$dir/var/lib/dpkg/info/nvidia-l4t-core.list"
      jetson_gpu "$dir" ;;
    ubuntu24) os_release "$dir" ubuntu 24.04 Ubuntu debian ;;
    fedora41) os_release "$dir" fedora 41 Fedora ;;
    debian12) ;;
    *) echo "dress: unknown OS $os" >&2; exit 2 ;;
  esac
}

case "${1:-}" in
  tarball) build_tarball; echo "$TARBALL" ;;
  unpack) unpack "${2:?usage: $0 unpack DIR}" ;;
  remove) rm -rf "${2:?usage: $0 remove DIR}" ;;
  dress) dress "${2:?usage: $0 dress DIR OS}" "${3:?usage: $0 dress DIR OS}" ;;
  *) echo "usage: $0 tarball | unpack DIR | remove DIR | dress DIR OS" >&2; exit 2 ;;
esac
