#!/usr/bin/env bash
# Re-locks the two requirement sets with uv, hashes included (`make lock`):
#   app/requirements.in -> app/requirements.txt   the app's runtime (webapp image, venv)
#   requirements.in     -> requirements.txt       controller, build and test tools (venv)
# Both are universal (any platform, Python 3.11): the images install the runtime lock for
# x86_64 and aarch64 alike. The runtime lock constrains the tools one, so a package both need
# (PyYAML, pillow, numpy, ...) has one version. Versions already in a lock are kept unless an
# .in file asks otherwise; `scripts/lock-requirements.sh --upgrade` moves every package on.
# face_recognition's dependency on `dlib` is overridden away: dlib-bin provides the module, and
# everything is installed --no-deps from these complete locks (scripts/setup.sh, the images).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
UV=${UV:-uv}
cd "$ROOT"

overrides=$(mktemp)
trap 'rm -f "$overrides"' EXIT
echo "dlib ; sys_platform == 'never'" > "$overrides"

compile() {
  local input=$1 output=$2
  shift 2
  "$UV" pip compile --quiet --universal --python-version 3.11 --generate-hashes \
    --overrides "$overrides" --no-emit-package dlib --custom-compile-command "make lock" \
    --output-file "$output" "$@" "$input"
}

compile app/requirements.in app/requirements.txt "$@"
compile requirements.in requirements.txt --constraint app/requirements.txt "$@"
echo "==> locked app/requirements.txt ($(grep -c '^[a-zA-Z]' app/requirements.txt) packages)," \
  "requirements.txt ($(grep -c '^[a-zA-Z]' requirements.txt) packages)"
