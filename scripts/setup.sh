#!/usr/bin/env bash
# One-command set-up of a controller / build machine (Debian 12), idempotent:
#   - the Debian packages the project and its tests use,
#   - a .venv with the locked Python tool chain (requirements.txt) and the app (editable) with
#     its locked runtime and face stack (app/requirements.txt),
#   - qemu's binfmt_misc handler for the other architecture (amd64 <-> arm64), where the kernel
#     lets us register it, so arm64 images build and run here under emulation,
#   - the collection linked where ansible-galaxy would install it,
#   - a podman containers.conf drop-in, only where plain podman cannot run a container.
# A second run checks and skips: it changes nothing unless a pin changed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3.11}
cd "$ROOT"

log() { printf '==> %s\n' "$*"; }

APT_PACKAGES=(
  podman catatonit buildah skopeo runc uidmap fuse-overlayfs slirp4netns iptables
  docker-registry nginx libnginx-mod-rtmp ffmpeg mosquitto mosquitto-clients
  debootstrap systemd-container qemu-user-static
  chromium chromium-driver
  make git curl ca-certificates sudo
  shellcheck
)

install_apt() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "Debian packages: all ${#APT_PACKAGES[@]} present"
    return
  fi
  log "Debian packages: installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  # Installing nginx must not start a system nginx on port 80: the tests run their own.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

install_venv() {
  # The stamp records what was installed; matching locks skip pip entirely.
  local stamp="$VENV/.edgeai-setup-stamp"
  local want
  want=$(cat requirements.txt app/requirements.txt app/pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c 'import edgeface, face_recognition' 2>/dev/null; then
    log "venv: $VENV up to date"
    return
  fi
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  log "venv: installing the locked tools and the app into $VENV"
  "$VENV/bin/pip" install -q --upgrade "pip==25.3"
  # Both locks are complete (every dependency pinned, with its hashes), so pip installs exactly
  # them, --no-deps. That is also what keeps face_recognition from pulling in `dlib`, which pip
  # would compile (~10 min): dlib-bin (in the runtime lock) provides the same module prebuilt.
  "$VENV/bin/pip" install -q --require-hashes --no-deps -r requirements.txt -r app/requirements.txt
  "$VENV/bin/pip" install -q --no-deps -e app
  echo "$want" > "$stamp"
}

enable_binfmt() {
  # Images for the other architecture (scripts/build-images.sh --arch/--platforms) build and
  # run under qemu-user-static: binfmt_misc mounted and qemu's handler registered. Where the
  # kernel refuses (no root, a container without the privilege), emulation stays off and the
  # arm64 image tests skip, saying so.
  local dir=/proc/sys/fs/binfmt_misc handler
  case "$(uname -m)" in
    x86_64) handler=qemu-aarch64 ;;
    aarch64) handler=qemu-x86_64 ;;
    *) return 0 ;;
  esac
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  if [ ! -e "$dir/register" ] && ! $sudo mount -t binfmt_misc binfmt_misc "$dir" 2>/dev/null; then
    log "binfmt_misc: cannot mount $dir here: no emulation of other architectures"
    return 0
  fi
  if [ -e "$dir/$handler" ]; then
    # Registered; switched back on if someone disabled it (echo 0 > the handler's file).
    head -1 "$dir/$handler" | grep -qx enabled || $sudo sh -c "echo 1 > $dir/$handler" || true
    log "binfmt_misc: $handler $(head -1 "$dir/$handler")"
    return 0
  fi
  if $sudo sh -c "cat /usr/lib/binfmt.d/$handler.conf > $dir/register" 2>/dev/null; then
    log "binfmt_misc: registered $handler"
  else
    log "binfmt_misc: cannot register $handler here: no emulation of other architectures"
  fi
}

link_collection() {
  # ansible finds edgeai.appliance.* (FQCN) through this link, as if installed from Galaxy.
  local dir="$ROOT/.collections/ansible_collections/edgeai"
  mkdir -p "$dir"
  if [ "$(readlink "$dir/appliance" 2>/dev/null)" != "$ROOT" ]; then
    ln -sfn "$ROOT" "$dir/appliance"
    log "collection: linked edgeai.appliance -> $ROOT"
  fi
}

podman_runtime() {
  # Plain podman fails on some hosts (crun setrlimit, hybrid cgroups). Probe with the
  # offline base image; only when it fails install runc/cgroupfs settings as a drop-in.
  "$ROOT/scripts/base-image.sh"
  local dropin=/etc/containers/containers.conf.d/50-edgeai-runc.conf
  if podman run --rm localhost/debian:bookworm true >/dev/null 2>&1; then
    log "podman: runs containers as configured"
    return
  fi
  log "podman: plain run fails here; installing $dropin"
  mkdir -p "$(dirname "$dropin")"
  install -m 0644 "$ROOT/scripts/containers.conf" "$dropin"
  podman run --rm localhost/debian:bookworm true
}

install_apt
enable_binfmt
install_venv
link_collection
podman_runtime
log "set-up complete: activate with 'source .venv/bin/activate' (make targets do it for you)"
