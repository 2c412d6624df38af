#!/usr/bin/env bash
# A throw-away Debian root for the host-role tests (molecule scenarios and tests/roles).
# The debootstrap runs once and is cached as a tarball; every scenario unpacks a fresh copy.
#   debian-root.sh tarball        -> prints the cached tarball's path (builds it when missing)
#   debian-root.sh unpack DIR     -> a fresh root in DIR (removed first), /etc/hosts included
#   debian-root.sh remove DIR     -> removes DIR
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

case "${1:-}" in
  tarball) build_tarball; echo "$TARBALL" ;;
  unpack) unpack "${2:?usage: $0 unpack DIR}" ;;
  remove) rm -rf "${2:?usage: $0 remove DIR}" ;;
  *) echo "usage: $0 tarball | unpack DIR | remove DIR" >&2; exit 2 ;;
esac
