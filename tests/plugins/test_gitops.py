"""The GitOps clone (plugins/module_utils/gitops.py and the gitops_publish module) against real Git
servers on loopback: `git daemon` for the network path, git's smart HTTP behind HTTPS with a token
for the forge path, and file:// where the transport does not matter (it is the quickest)."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from git_server import GitDaemon, GitHttpsServer, bare_repository, git
from playbook import run_playbook
from servers import SiteCredentials

from .conftest import LOCAL, REPO_ROOT, load_by_path

GITOPS_PATH = REPO_ROOT / "plugins" / "module_utils" / "gitops.py"
DEVICES = ("dev1", "dev2", "dev3")


@pytest.fixture(scope="module")
def gitops() -> ModuleType:
    return load_by_path("edgeai_appliance_gitops", GITOPS_PATH)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("served")


@pytest.fixture(scope="module")
def daemon(served: Path) -> Iterator[GitDaemon]:
    with GitDaemon(served) as running:
        yield running


@pytest.fixture
def bare(served: Path, request: pytest.FixtureRequest) -> Path:
    """An empty repository of the test's own under the served folder."""
    return bare_repository(served / f"{request.node.name}.git")


def file_url(bare: Path) -> str:
    return f"file://{bare}"


def write_trees(tree: Path, version: str, devices: tuple[str, ...] = DEVICES) -> None:
    """What the manifests runtime writes for each device: its folder with a file naming the model."""
    for device in devices:
        (tree / device).mkdir(parents=True, exist_ok=True)
        (tree / device / "model.yaml").write_text(f"model: {version}\n")


def log(bare: Path) -> list[tuple[str, list[str]]]:
    """The remote branch's commits, newest first: (subject, files)."""
    if not git("--git-dir", str(bare), "for-each-ref", "refs/heads/main"):
        return []
    text = git("--git-dir", str(bare), "log", "--format=%x00%s", "--name-only", "main")
    commits = []
    for entry in text.split("\0")[1:]:
        subject, _, files = entry.partition("\n")
        commits.append((subject, sorted(filter(None, files.splitlines()))))
    return commits


def push_from_another_clone(url: str, scratch: Path, path: str, content: str) -> None:
    """Someone else (another run, a person) changes `path` on the remote's main first."""
    other = scratch / "other-clone"
    if not other.exists():
        git("clone", "-q", url, str(other))
    git("pull", "-q", "--ff-only", "origin", "main", cwd=other)
    (other / path).parent.mkdir(parents=True, exist_ok=True)
    (other / path).write_text(content)
    git("add", "-A", cwd=other)
    git("commit", "-q", "-m", f"someone else changes {path}", cwd=other)
    git("push", "-q", "origin", "HEAD:main", cwd=other)


def first_wave(
    gitops: ModuleType, url: str, tmp: Path, devices: tuple[str, ...] = ("dev1",)
) -> tuple[Any, Any, Path]:
    """A clone of `url` in `tmp`/gitops whose first wave (`devices` at model 1) is pushed:
    (remote, author, tree)."""
    remote = gitops.Remote(url)
    author = gitops.Author("bot", "bot@localhost")
    tree = tmp / "gitops"
    gitops.checkout(str(tree), remote, author)
    write_trees(tree, "1", devices)
    gitops.publish(str(tree), remote, author, list(devices), "wave 1")
    return remote, author, tree


def test_an_empty_remote_is_cloned_and_one_commit_holds_only_the_named_devices(
    gitops: ModuleType, daemon: GitDaemon, bare: Path, tmp_path: Path
) -> None:
    remote = gitops.Remote(daemon.url(bare.name))
    author = gitops.Author("edgeai.appliance", "edgeai.appliance@localhost")
    tree = tmp_path / "gitops"

    cloned = gitops.checkout(str(tree), remote, author)
    assert (cloned.changed, cloned.cloned, cloned.head) == (True, True, "")
    write_trees(tree, "2612051330")
    published = gitops.publish(
        str(tree), remote, author, ["dev1", "dev2"], "retrain: model 2612051330 to dev1, dev2"
    )

    assert published.changed and published.pushed and not published.rebased
    assert log(bare) == [("retrain: model 2612051330 to dev1, dev2", ["dev1/model.yaml", "dev2/model.yaml"])]
    assert published.commit == git("--git-dir", str(bare), "rev-parse", "main")
    assert published.files == ["dev1/model.yaml", "dev2/model.yaml"]
    assert git("--git-dir", str(bare), "log", "-1", "--format=%an <%ae>", "main") == (
        "edgeai.appliance <edgeai.appliance@localhost>"
    )
    assert git("status", "--porcelain", cwd=tree) == "?? dev3/"  # not in this wave: left alone


def test_nothing_changed_makes_no_commit(gitops: ModuleType, bare: Path, tmp_path: Path) -> None:
    remote, author, tree = first_wave(gitops, file_url(bare), tmp_path, DEVICES)
    write_trees(tree, "1")  # the same tree written again

    again = gitops.publish(str(tree), remote, author, list(DEVICES), "deploy again")

    assert (again.changed, again.commit, again.pushed, again.files) == (False, "", False, [])
    assert [subject for subject, _ in log(bare)] == ["wave 1"]


def test_a_deleted_device_tree_is_committed_as_a_deletion(
    gitops: ModuleType, bare: Path, tmp_path: Path
) -> None:
    remote, author, tree = first_wave(gitops, file_url(bare), tmp_path, DEVICES)
    (tree / "dev3" / "model.yaml").unlink()
    (tree / "dev3").rmdir()

    gitops.publish(str(tree), remote, author, ["dev3"], "reset: dev3")

    assert log(bare)[0] == ("reset: dev3", ["dev3/model.yaml"])
    assert "dev3" not in git("--git-dir", str(bare), "ls-tree", "--name-only", "main")


def test_a_rejected_push_is_rebased_once_and_pushed(
    gitops: ModuleType, daemon: GitDaemon, bare: Path, tmp_path: Path
) -> None:
    url = daemon.url(bare.name)
    remote, author, tree = first_wave(gitops, url, tmp_path)
    push_from_another_clone(url, tmp_path, "dev9/model.yaml", "model: 7\n")  # the remote moves on
    write_trees(tree, "2", ("dev1",))

    published = gitops.publish(str(tree), remote, author, ["dev1"], "wave 2")

    assert published.pushed and published.rebased
    assert [subject for subject, _ in log(bare)] == [
        "wave 2",
        "someone else changes dev9/model.yaml",
        "wave 1",
    ]
    assert log(bare)[0][1] == ["dev1/model.yaml"]
    assert published.commit == git("--git-dir", str(bare), "rev-parse", "main")
    assert (tree / "dev9" / "model.yaml").read_text() == "model: 7\n"  # the clone is at the remote's head


def test_a_conflicting_change_fails_naming_the_remote_and_keeps_the_commit(
    gitops: ModuleType, daemon: GitDaemon, bare: Path, tmp_path: Path
) -> None:
    url = daemon.url(bare.name)
    remote, author, tree = first_wave(gitops, url, tmp_path)
    push_from_another_clone(url, tmp_path, "dev1/model.yaml", "model: by hand\n")
    remote_head = git("--git-dir", str(bare), "rev-parse", "main")
    write_trees(tree, "2", ("dev1",))

    with pytest.raises(gitops.GitOpsError) as failed:
        gitops.publish(str(tree), remote, author, ["dev1"], "wave 2")

    assert failed.value.reason == "conflict"
    assert url in str(failed.value) and "dev1/model.yaml" in str(failed.value)
    assert git("--git-dir", str(bare), "rev-parse", "main") == remote_head
    assert git("log", "-1", "--format=%s", cwd=tree) == "wave 2"  # kept, not pushed; the rebase undone
    assert git("status", "--porcelain", cwd=tree) == ""
    # The next run's checkout says what to do with it.
    with pytest.raises(gitops.GitOpsError) as diverged:
        gitops.checkout(str(tree), remote, author)
    assert diverged.value.reason == "diverged"
    assert "reset --hard origin/main" in str(diverged.value)


def test_checkout_fast_forwards_a_clean_clone(gitops: ModuleType, bare: Path, tmp_path: Path) -> None:
    url = file_url(bare)
    remote, author, tree = first_wave(gitops, url, tmp_path)
    push_from_another_clone(url, tmp_path, "dev2/model.yaml", "model: 2\n")

    assert gitops.checkout(str(tree), remote, author, check_mode=True).changed
    assert not (tree / "dev2").exists()  # check mode wrote nothing
    moved = gitops.checkout(str(tree), remote, author)

    assert moved.changed and not moved.cloned
    assert moved.head == git("--git-dir", str(bare), "rev-parse", "main")
    assert (tree / "dev2" / "model.yaml").read_text() == "model: 2\n"
    assert not gitops.checkout(str(tree), remote, author).changed


def test_checkout_refuses_a_dirty_tree_naming_the_folder_and_files(
    gitops: ModuleType, bare: Path, tmp_path: Path
) -> None:
    remote, author, tree = first_wave(gitops, file_url(bare), tmp_path)
    write_trees(tree, "2", ("dev1", "dev2"))

    with pytest.raises(gitops.GitOpsError) as failed:
        gitops.checkout(str(tree), remote, author)

    assert failed.value.reason == "dirty"
    assert str(tree) in str(failed.value)
    assert "dev1/model.yaml, dev2/model.yaml" in str(failed.value)


def test_checkout_refuses_another_remotes_clone_and_a_folder_that_is_no_clone(
    gitops: ModuleType, bare: Path, served: Path, tmp_path: Path
) -> None:
    author = gitops.Author("bot", "bot@localhost")
    other = bare_repository(served / "another-site.git")
    clone = tmp_path / "clone"
    gitops.checkout(str(clone), gitops.Remote(file_url(other)), author)
    with pytest.raises(gitops.GitOpsError) as elsewhere:
        gitops.checkout(str(clone), gitops.Remote(file_url(bare)), author)
    assert elsewhere.value.reason == "other_remote"
    assert str(clone) in str(elsewhere.value) and "another-site.git" in str(elsewhere.value)

    plain = tmp_path / "plain"
    write_trees(plain, "1", ("dev1",))  # a tree from before GitOps was turned on
    with pytest.raises(gitops.GitOpsError) as no_clone:
        gitops.checkout(str(plain), gitops.Remote(file_url(bare)), author)
    assert no_clone.value.reason == "not_a_clone" and str(plain) in str(no_clone.value)


def test_check_mode_commits_nothing(gitops: ModuleType, bare: Path, tmp_path: Path) -> None:
    remote = gitops.Remote(file_url(bare))
    author = gitops.Author("bot", "bot@localhost")
    tree = tmp_path / "gitops"
    assert gitops.checkout(str(tree), remote, author, check_mode=True).cloned
    assert not tree.exists()
    gitops.checkout(str(tree), remote, author)
    write_trees(tree, "1")

    would = gitops.publish(str(tree), remote, author, ["dev1", "dev2"], "deploy", check_mode=True)

    assert would.changed and would.files == ["dev1/model.yaml", "dev2/model.yaml"]
    assert (would.commit, would.pushed) == ("", False)
    assert log(bare) == []
    assert git("status", "--porcelain", cwd=tree).splitlines() == ["?? dev1/", "?? dev2/", "?? dev3/"]


def test_an_ssh_key_lives_in_a_private_file_for_the_session_only(gitops: ModuleType, tmp_path: Path) -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----"
    remote = gitops.Remote("git@git.example.com:edge/devices.git", ssh_key=key)
    with gitops.Session(str(tmp_path / "gitops"), remote) as session:
        command = session.env["GIT_SSH_COMMAND"]
        path = Path(command.split(" -i ", 1)[1].split()[0])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text() == key + "\n"  # the newline ssh needs, which a vault string may lose
        assert "BatchMode=yes" in command and key not in command
    assert not path.exists() and not path.parent.exists()


def test_a_url_with_a_password_is_refused_without_showing_it(gitops: ModuleType, tmp_path: Path) -> None:
    remote = gitops.Remote("https://bot:s3cr3t-t0ken@git.example.com/edge/devices.git")
    with pytest.raises(gitops.GitOpsError) as refused:
        gitops.checkout(str(tmp_path / "gitops"), remote)
    assert refused.value.reason == "bad_input"
    assert "s3cr3t-t0ken" not in str(refused.value)
    assert "https://bot@git.example.com/edge/devices.git" in str(refused.value)
    assert not (tmp_path / "gitops").exists()


@pytest.fixture(scope="module")
def forge(served: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHttpsServer]:
    """git http-backend over HTTPS with a token, as a forge serves it; git trusts its CA."""
    site = SiteCredentials()
    with (
        pytest.MonkeyPatch.context() as patch,
        GitHttpsServer(served, site, tmp_path_factory.mktemp("tls")) as server,
    ):
        patch.setenv("GIT_SSL_CAINFO", str(site.ca_file))
        yield server
    site.remove()


def test_a_token_authenticates_over_https_and_is_never_stored_or_shown(
    gitops: ModuleType, forge: GitHttpsServer, bare: Path, tmp_path: Path
) -> None:
    url = forge.url(bare.name)
    remote = gitops.Remote(url, token=forge.token, token_user=forge.USER)
    author = gitops.Author("bot", "bot@localhost")
    tree = tmp_path / "gitops"
    encoded = base64.b64encode(f"{forge.USER}:{forge.token}".encode()).decode()

    gitops.checkout(str(tree), remote, author)
    write_trees(tree, "1")
    published = gitops.publish(str(tree), remote, author, list(DEVICES), "deploy over https")

    assert published.pushed and [subject for subject, _ in log(bare)] == ["deploy over https"]
    assert f"Basic {encoded}" in forge.authorizations
    stored = "".join(
        path.read_text(errors="replace") for path in (tree / ".git").rglob("*") if path.is_file()
    )
    assert forge.token not in stored and encoded not in stored
    assert git("config", "--get", "remote.origin.url", cwd=tree) == url

    wrong = gitops.Remote(url, token="not-" + forge.token, token_user=forge.USER)
    write_trees(tree, "2")
    with pytest.raises(gitops.GitOpsError) as refused:
        gitops.publish(str(tree), wrong, author, list(DEVICES), "deploy with a wrong token")
    assert refused.value.reason == "unreachable" and url in str(refused.value)
    assert forge.token not in str(refused.value)


def test_the_module_hides_the_token_and_commits_nothing_in_check_mode(
    forge: GitHttpsServer, bare: Path, tmp_path: Path
) -> None:
    """gitops_publish as Ansible runs it: a check-mode publication, then one the forge refuses."""
    url = forge.url(bare.name)
    tree = tmp_path / "gitops"
    # The tokens come from the environment, as from a vault: never written in the playbook.
    arguments = {
        "path": str(tree),
        "repo": url,
        "token": "{{ lookup('env', 'TOKEN') }}",
        "token_user": forge.USER,
    }
    wrong = {**arguments, "token": "{{ lookup('env', 'WRONG_TOKEN') }}"}
    tasks = [
        {"edgeai.appliance.gitops_publish": {**arguments, "operation": "checkout"}},
        {"ansible.builtin.file": {"path": f"{tree}/dev1", "state": "directory", "mode": "0755"}},
        {
            "ansible.builtin.copy": {
                "dest": f"{tree}/dev1/model.yaml",
                "content": "model: 1\n",
                "mode": "0644",
            }
        },
        {
            "edgeai.appliance.gitops_publish": {**arguments, "paths": ["dev1"], "commit_message": "deploy"},
            "check_mode": True,
            "register": "checked",
        },
        {
            "edgeai.appliance.gitops_publish": {**wrong, "paths": ["dev1"], "commit_message": "deploy"},
            "register": "refused",
            "ignore_errors": True,
        },
        {
            "ansible.builtin.copy": {
                "content": "{{ [checked, refused] | to_json }}",
                "dest": f"{tmp_path}/results.json",
            }
        },
    ]
    playbook = tmp_path / "module.yml"
    playbook.write_text(
        yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "vars": LOCAL, "tasks": tasks}])
    )

    environment = {"TOKEN": forge.token, "WRONG_TOKEN": "wrong-" + forge.token}
    run = run_playbook(
        str(playbook),
        "-i",
        "localhost,",
        "-v",
        env={**environment, "GIT_SSL_CAINFO": os.environ["GIT_SSL_CAINFO"]},
    )

    checked, refused = json.loads((tmp_path / "results.json").read_text())
    assert checked["changed"] and checked["files"] == ["dev1/model.yaml"] and checked["commit"] == ""
    assert log(bare) == []
    assert refused["failed"] and refused["reason"] == "unreachable" and url in refused["msg"]
    everything: Any = run.stdout + run.stderr + json.dumps([checked, refused])
    assert forge.token not in everything
    assert base64.b64encode(f"{forge.USER}:{forge.token}".encode()).decode() not in everything
