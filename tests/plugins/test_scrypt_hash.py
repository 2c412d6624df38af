"""The scrypt_hash filter writes what the web app verifies, and the same line on every run."""

from __future__ import annotations

import pytest

from edgeface import auth

from .conftest import REPO_ROOT, load_by_path

FILTER = REPO_ROOT / "plugins" / "filter" / "scrypt_hash.py"


def scrypt_hash(password: str, salt: str) -> str:
    hashed: str = load_by_path("edgeai_appliance_scrypt_hash", FILTER).scrypt_hash(password, salt)
    return hashed


def test_the_app_accepts_the_filters_hash_and_refuses_another_password() -> None:
    hashed = scrypt_hash("correct horse battery", "Zq8s1LmN0pXa4Rt2")
    assert auth.verify_password("correct horse battery", hashed)
    assert not auth.verify_password("correct horse batterY", hashed)


def test_the_same_salt_gives_the_same_line_so_reruns_change_nothing() -> None:
    assert scrypt_hash("a password", "salt-salt-salt") == scrypt_hash("a password", "salt-salt-salt")
    assert scrypt_hash("a password", "salt-salt-salt") != scrypt_hash("a password", "other-salt-here")


def test_a_short_salt_is_refused() -> None:
    with pytest.raises(ValueError, match="8 characters"):
        scrypt_hash("a password", "short")
