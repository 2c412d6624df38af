#!/usr/bin/env bash
# Pushes local images (podman's storage) to a registry and prints the digest each now has there.
#
#   scripts/push-images.sh --registry HOST[:PORT]/NAMESPACE [--tls-verify true|false]
#                          [--authfile FILE] [--cert-dir DIR] SRC[=NAME:TAG]...
#
# --authfile: the registry's credentials (containers-auth.json(5)); --cert-dir: a folder of CA
# certificates (*.crt) to verify the registry with, e.g. the site CA's.
#
# SRC is a local image reference; it is pushed as REGISTRY/NAME:TAG (default: SRC's last path
# component, e.g. localhost/ai-for-edge/amd64/webapp:0.1.0 -> REGISTRY/webapp:0.1.0). An image the
# registry already holds (its manifest names the same config, i.e. the same image ID) is not
# pushed again. Prints one line per image:
#   ==> push DEST: pushed|up to date sha256:<manifest digest>
# The digest is the one the registry serves (sha256 of the stored manifest), so deployments can
# reference DEST's repository @ that digest.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3

registry=""
tls_verify=true
auth_args=()
sources=()

die() { echo "push-images: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --registry) registry=${2:?--registry needs a value}; shift ;;
    --tls-verify) tls_verify=${2:?--tls-verify needs a value}; shift ;;
    --authfile) [ -r "${2:?--authfile needs a value}" ] || die "--authfile $2: no such readable file"
                auth_args+=(--authfile "$2"); shift ;;
    --cert-dir) [ -d "${2:?--cert-dir needs a value}" ] || die "--cert-dir $2: no such folder"
                auth_args+=(--cert-dir "$2"); shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) sources+=("$1") ;;
  esac
  shift
done
[ -n "$registry" ] || die "--registry is required"
case "$tls_verify" in true|false) ;; *) die "--tls-verify $tls_verify: expected true or false" ;; esac
[ ${#sources[@]} -gt 0 ] || die "no image to push"

# Prints "<config digest> <manifest digest>" of DEST in the registry, or nothing when it is absent.
remote_digests() {
  skopeo inspect --raw --tls-verify="$tls_verify" ${auth_args[@]+"${auth_args[@]}"} "docker://$1" 2>/dev/null | "$PYTHON" -c '
import hashlib, json, sys
raw = sys.stdin.buffer.read()
if raw:
    print(json.loads(raw).get("config", {}).get("digest", ""), "sha256:" + hashlib.sha256(raw).hexdigest())
' 2>/dev/null || true
}

for source in "${sources[@]}"; do
  src=${source%%=*}
  name=${source#*=}
  [ "$name" != "$source" ] || name=${src##*/}
  dest="$registry/$name"
  local_id=$(podman image inspect --format '{{.Id}}' "$src" 2>/dev/null) || die "$src: no such local image"
  read -r remote_config digest <<<"$(remote_digests "$dest")" || true
  if [ "${remote_config:-}" = "sha256:$local_id" ]; then
    state="up to date"
  else
    podman push --tls-verify="$tls_verify" ${auth_args[@]+"${auth_args[@]}"} "$src" "docker://$dest" >&2
    state=pushed
    read -r remote_config digest <<<"$(remote_digests "$dest")" || true
    [ -n "${digest:-}" ] || die "$dest: pushed, but the registry serves no manifest for it"
  fi
  printf '==> push %s: %s %s\n' "$dest" "$state" "$digest"
done
