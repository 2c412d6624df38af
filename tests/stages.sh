#!/usr/bin/env bash
# make test: every stage and pytest suite CI runs, each timed ("==> stage NAME took N s").
#
# Lint first (a failure stops here). Then the suites on the one appliance (tests/appliance,
# tests/e2e, tests/lifecycle) run first: a deployment, then rollouts, pods and a stream that they
# mostly wait on. Beside them run the stages that share no host state with that deployment and time
# nothing: sanity, molecule, the host roles (chroot roots), plugins, training, the collection's
# files, the app's quick tests (the `app_unit` marker) and the rendered trees; their output is
# shown when they end. Last, alone on the machine, the suites that time things or build the
# appliance's image tags: the app's streams and the images. `make pytest` runs the same suites in
# one pytest, one after the other.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
mkdir -p "$BUILD"

stage() {
  local name=$1 start rc
  shift
  start=$(date +%s)
  "$@"
  rc=$?
  echo "==> stage $name took $(( $(date +%s) - start )) s$([ $rc -eq 0 ] || echo ", FAILED ($rc)")"
  return $rc
}

APPLIANCE_SUITES=(tests/appliance tests/e2e tests/lifecycle)
BESIDE_SUITES=(tests/roles tests/plugins tests/training tests/collection)
# The rendered trees time nothing and share no host state with the appliance (registries of their
# own on free ports, trees in temporary folders): they run beside it too, once the appliance's
# images exist (its deployment builds them in its first minutes; a build here would be skipped).
TREE_SUITES=(tests/workloads)

beside() {
  stage sanity make --no-print-directory sanity \
    && stage molecule make --no-print-directory molecule \
    && stage pytest-beside pytest -p no:cacheprovider --durations=10 "${BESIDE_SUITES[@]}" \
    && stage pytest-app-units pytest -p no:cacheprovider --durations=5 -m app_unit tests/app \
    && stage pytest-trees pytest -p no:cacheprovider --durations=10 "${TREE_SUITES[@]}"
}

stage lint make --no-print-directory lint || exit 1

# Both pytest runs read the sample photos: fetch them once, before either starts.
python tests/photos.py >/dev/null || exit 1

beside >"$BUILD/beside.log" 2>&1 &
beside_pid=$!
stage pytest-appliance pytest --durations=15 "${APPLIANCE_SUITES[@]}"
appliance_rc=$?
wait "$beside_pid"
beside_rc=$?
echo "==> the stages run beside the appliance's suites ($BUILD/beside.log):"
cat "$BUILD/beside.log"

# Every other suite (a new folder under tests/ lands here by itself).
ignore=()
for suite in "${APPLIANCE_SUITES[@]}" "${BESIDE_SUITES[@]}" "${TREE_SUITES[@]}"; do ignore+=(--ignore "$suite"); done
stage pytest-rest pytest --durations=15 -m "not app_unit" tests "${ignore[@]}"
rest_rc=$?

[ "$appliance_rc" -eq 0 ] && [ "$beside_rc" -eq 0 ] && [ "$rest_rc" -eq 0 ]
