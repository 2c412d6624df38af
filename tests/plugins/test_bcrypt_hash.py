"""The bcrypt_hash filter writes an htpasswd line the real registry (Docker distribution) accepts."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request

import pytest

from servers import Registry

from .conftest import REPO_ROOT, load_by_path

FILTER = REPO_ROOT / "plugins" / "filter" / "bcrypt_hash.py"
SALT = "Zq8s1LmN0pXa4Rt2Yw6Vb3"


def bcrypt_hash(password: str, salt: str, cost: int = 10) -> str:
    hashed: str = load_by_path("edgeai_appliance_bcrypt_hash", FILTER).bcrypt_hash(password, salt, cost)
    return hashed


def status(registry: Registry, user: str, password: str) -> int:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(
        f"http://{registry.host}/v2/", headers={"Authorization": f"Basic {pair}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_the_registry_lets_in_the_filters_user_and_no_other_password() -> None:
    line = f"edgeai:{bcrypt_hash('correct horse battery', SALT)}\n"
    with Registry(htpasswd=line) as registry:
        assert status(registry, "edgeai", "correct horse battery") == 200
        assert status(registry, "edgeai", "correct horse batterY") == 401
        assert status(registry, "someone", "correct horse battery") == 401
        with pytest.raises(urllib.error.HTTPError) as anonymous:
            urllib.request.urlopen(f"http://{registry.host}/v2/", timeout=10)
        assert anonymous.value.code == 401


def test_the_same_salt_gives_the_same_line_so_reruns_change_nothing() -> None:
    assert bcrypt_hash("a password", SALT) == bcrypt_hash("a password", SALT)
    assert bcrypt_hash("a password", SALT) != bcrypt_hash("a password", "Other0salt0of0twenty02")
    assert bcrypt_hash("a password", SALT).startswith("$2b$10$")


@pytest.mark.parametrize(
    ("salt", "cost", "message"),
    [("short", 10, "22 characters"), ("Zq8s1LmN0pXa4Rt2Yw6V-!", 10, "22 characters"), (SALT, 3, "cost 3")],
)
def test_a_bad_salt_or_cost_is_named(salt: str, cost: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bcrypt_hash("a password", salt, cost)
