#!/bin/sh
# Copies the image's model.data into TARGET_DIR (default $MODEL_TARGET_DIR, e.g. an emptyDir
# shared with the web app) and checks its sha256 there; the file appears atomically (temp + rename).
# Usage: copy-model [TARGET_DIR]
set -eu
target=${1:-${MODEL_TARGET_DIR:-/models}}
if [ ! -d "$target" ]; then
  echo "copy-model: target directory $target does not exist (mount a volume there)" >&2
  exit 2
fi
tmp="$target/.model.data.$$"
if ! cp /opt/model/model.data "$tmp"; then
  echo "copy-model: cannot write to $target" >&2
  exit 1
fi
if ! echo "$MODEL_SHA256  $tmp" | sha256sum -c -s -; then
  rm -f "$tmp"
  echo "copy-model: sha256 of the copy in $target is not $MODEL_SHA256" >&2
  exit 1
fi
chmod 0644 "$tmp"
mv -f "$tmp" "$target/model.data"
echo "copy-model: model $MODEL_VERSION (sha256 $MODEL_SHA256) -> $target/model.data"
