"""Offline stand-in for the pip bootstrap script ansible-test downloads (``get-pip``).

ansible-test creates each sanity test's virtual environment without pip, then runs its cached
``~/.ansible/test/cache/get_pip_<version>.py`` to install the pip it pins; that script comes
from a host outside PyPI, which this project cannot reach. This one does the same job with the
pip wheel the interpreter bundles for ``ensurepip``: it runs that pip to install the requested
packages (the pinned pip) from PyPI. ``tests/ansible_test/sanity.sh`` copies it into the cache.
"""

import glob
import os
import sys
import sysconfig


def bundled_pip_wheel() -> str:
    """Path of a pip wheel shipped with this Python (ensurepip's, or Debian's python-wheels)."""
    stdlib = sysconfig.get_paths()["stdlib"]
    candidates = sorted(glob.glob(os.path.join(stdlib, "ensurepip", "_bundled", "pip-*.whl")))
    candidates += sorted(glob.glob("/usr/share/python-wheels/pip-*.whl"))
    if not candidates:
        sys.exit("get_pip: no bundled pip wheel (ensurepip) found for " + sys.executable)
    return candidates[-1]


def main() -> int:
    """Install the packages named on the command line, as get-pip does."""
    # get-pip's own switches; everything else is a pip install argument.
    args = [arg for arg in sys.argv[1:] if arg not in {"--no-setuptools", "--no-wheel"}]
    sys.path.insert(0, bundled_pip_wheel())
    from pip._internal.cli.main import main as pip_main

    return int(pip_main(["install", "--upgrade", "--force-reinstall", *args]))


if __name__ == "__main__":
    sys.exit(main())
