#!/usr/bin/env bash
# ansible-test sanity on the collection as it ships: the tarball `make collection` built,
# unpacked where ansible-test needs it, with the venv's Python only. The folder must end in
# ansible_collections/edgeai/appliance (a symlink to the checkout is not enough: ansible-test
# resolves it) and lie outside any git checkout (ansible-test would list the files with git, and
# find none in an ignored build folder): a fresh temporary folder, removed afterwards.
#
#   tests/ansible_test/sanity.sh TARBALL
#
# ansible-test runs each test in a virtual environment of its own under ~/.ansible/test/venv,
# made once and reused, with the tools it pins, installed from PyPI. It bootstraps pip into them
# with a script it downloads from a host outside PyPI; get_pip.py, put where ansible-test caches
# that script, does the same from the pip wheel Python bundles, so no other host is needed.
set -euo pipefail

tarball=$(realpath "${1:?usage: sanity.sh TARBALL}")
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python}

pip_version=$("$python" - <<'PY'
from types import SimpleNamespace

from ansible_test._internal.python_requirements import get_venv_packages

print(get_venv_packages(SimpleNamespace(version="3.11"))["pip"])
PY
)
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [ ! -f "$cache" ]; then
  mkdir -p "$(dirname "$cache")"
  cp "$here/get_pip.py" "$cache"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/edgeai-appliance-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT
collection="$work/ansible_collections/edgeai/appliance"
mkdir -p "$collection"
tar -xzf "$tarball" -C "$collection"

cd "$collection"
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
start=$(date +%s)
ansible-test sanity --local --python "$version" --color no
echo "==> ansible-test sanity (Python $version) took $(( $(date +%s) - start )) s"
