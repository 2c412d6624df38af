# SPDX-License-Identifier: Apache-2.0
"""Git for the GitOps tree: a clone of the site's repository that the manifests runtime writes
into, one commit of the named folders, pushed to the remote's branch.

``checkout`` makes a folder a clone at the remote head of a branch (an empty remote included:
the first push creates the branch) and fast-forwards a clean clone; ``publish`` commits only the
named paths and pushes. A push the remote rejects because it moved on is rebased once onto what
it holds now and pushed again; a second rejection, a conflict or any other failure stops the run
with a message naming the remote.

The controller's ``git`` command does the work. Credentials reach it through the environment of
each command only, never through a file of the clone or its command line:

- an SSH key is written to a 0600 file in a private temporary folder for ``GIT_SSH_COMMAND`` and
  removed when the session ends, whatever happened;
- a token is sent as an ``Authorization: Basic`` ``http.<remote>.extraHeader`` given as
  ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` (git 2.31 or later): unlike
  ``-c`` on the command line, other users of the controller cannot read it in the process list.

Every message that leaves this module names the remote without credentials, and the token (as
given and as sent) is scrubbed from what git printed.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# Seconds one git command may take: talking to the remote, and on the local clone alone.
NETWORK_TIMEOUT = 300
LOCAL_TIMEOUT = 120
# How many file names a message lists before it says how many more there are.
LISTED_FILES = 20
SCRUBBED = "********"
# git@host:path, the short form of an SSH URL (a colon before any slash, no scheme).
SCP_LIKE = re.compile(r"^(?:[^@/]+@)?[^/:]+:(?!//)")
# Left by an operation git stopped in the middle of: the clone is not in a state to commit in.
UNFINISHED = ("MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "rebase-merge", "rebase-apply")


class GitOpsError(Exception):
    """Why a checkout or publication stopped; `reason` is one of REASONS, for the caller."""

    REASONS = (
        "bad_input",  # a URL with a password, a path leaving the tree, an empty message
        "not_a_clone",  # the folder holds files and is no clone
        "other_remote",  # the folder is a clone of another remote
        "dirty",  # uncommitted changes (checkout), or an unfinished merge/rebase
        "diverged",  # local commits the remote does not have, and the remote moved on
        "conflict",  # a rejected push could not be rebased onto the remote's branch
        "rejected",  # the push was rejected again after the rebase
        "unreachable",  # the remote did not answer, refused the credentials or the push
        "failed",  # anything else git refused
    )

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Remote:
    """A Git remote, the branch to follow and how to authenticate to it."""

    url: str
    branch: str = "main"
    ssh_key: str = field(default="", repr=False)
    ssh_known_hosts: str = ""
    token: str = field(default="", repr=False)
    token_user: str = "git"

    @property
    def transport(self) -> str:
        """http, ssh, git or file: how git reaches the remote."""
        return transport(self.url)

    @property
    def shown(self) -> str:
        """The URL as messages name it: without a password."""
        return without_password(self.url)


@dataclass(frozen=True)
class Author:
    """Who the commits are by (author and committer)."""

    name: str
    email: str


@dataclass
class Outcome:
    """What a checkout or publication did (or, in check mode, would do)."""

    changed: bool = False
    # publish: the commit now at the remote's branch that this run pushed, else "";
    # checkout: the commit checked out ("" for an empty remote).
    commit: str = ""
    # The clone's HEAD afterwards ("" before the first commit).
    head: str = ""
    # publish: the files of the commit (that would be committed, in check mode).
    files: list[str] = field(default_factory=list)
    cloned: bool = False
    pushed: bool = False
    rebased: bool = False
    remote: str = ""
    branch: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def transport(url: str) -> str:
    """http, ssh, git or file for a Git URL; GitOpsError for a scheme git does not speak here."""
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        known = {
            "http": "http",
            "https": "http",
            "ssh": "ssh",
            "git+ssh": "ssh",
            "ssh+git": "ssh",
            "git": "git",
            "file": "file",
        }
        if scheme not in known:
            raise GitOpsError(
                "bad_input",
                f"the repository URL's scheme {scheme}:// is not one of {', '.join(sorted(known))}",
            )
        return known[scheme]
    if SCP_LIKE.match(url) and not url.startswith(("/", ".")):
        return "ssh"
    return "file"


def without_password(url: str) -> str:
    """The URL with any password of its user part left out (the user name kept)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


def check_remote(remote: Remote) -> None:
    """Refuse what would put a credential into the clone's configuration or leave the branch unnamed."""
    if not remote.url:
        raise GitOpsError("bad_input", "the repository URL is empty")
    if transport(remote.url) == "http" and urlsplit(remote.url).password is not None:
        raise GitOpsError(
            "bad_input",
            f"the repository URL {remote.shown} holds a password, which git would store in the clone's "
            "configuration: give the URL without it and the password or token as the token",
        )
    if not remote.branch or remote.branch.startswith("-") or " " in remote.branch:
        raise GitOpsError("bad_input", f"{remote.branch!r} is not a branch name")


def check_paths(paths: list[str]) -> list[str]:
    """The paths, relative to the tree and inside it, without trailing slashes."""
    checked = []
    for path in paths:
        parts = [part for part in path.strip().split("/") if part not in ("", ".")]
        if not parts or path.startswith("/") or ".." in parts or parts[0] == ".git":
            raise GitOpsError("bad_input", f"{path!r} is not a path inside the tree")
        checked.append("/".join(parts))
    return checked


def listed(files: list[str]) -> str:
    """File names for a message: the first LISTED_FILES, then how many more."""
    shown = ", ".join(files[:LISTED_FILES])
    return shown + (f" and {len(files) - LISTED_FILES} more" if len(files) > LISTED_FILES else "")


def under(path: str, files: list[str]) -> bool:
    """Whether any of the files is `path` or inside it."""
    return any(name == path or name.startswith(path + "/") for name in files)


def write_private(folder: str, name: str, content: str) -> str:
    """A file only its owner reads (0600 from its creation on); its path."""
    path = os.path.join(folder, name)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(content)
    return path


class Session:
    """git in one work tree, with the remote's credentials in each command's environment.

    A context manager: the temporary folder holding the SSH key is removed on exit.
    """

    def __init__(self, work_tree: str, remote: Remote, author: Author | None = None) -> None:
        self.work_tree = os.path.abspath(work_tree)
        self.remote = remote
        self.author = author
        self.tracking = f"refs/remotes/origin/{remote.branch}"
        self.secrets: list[str] = []
        self.env: dict[str, str] = {}
        self.scratch = ""

    def __enter__(self) -> Session:
        self.scratch = tempfile.mkdtemp(prefix="edgeai-gitops-")  # 0700
        try:
            self.env = self.environment()
        except BaseException:
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    def environment(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX"))
        }
        env.update(
            GIT_TERMINAL_PROMPT="0",  # a missing or refused credential fails instead of asking
            GIT_ASKPASS="",
            SSH_ASKPASS="",
            LC_ALL="C",  # git's messages in English, as parsed below
            LANGUAGE="C",
        )
        if self.author:
            env.update(
                GIT_AUTHOR_NAME=self.author.name,
                GIT_AUTHOR_EMAIL=self.author.email,
                GIT_COMMITTER_NAME=self.author.name,
                GIT_COMMITTER_EMAIL=self.author.email,
            )
        remote = self.remote
        if remote.transport == "ssh":
            ssh = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=30"]
            if remote.ssh_key:
                # A key pasted into a vault often loses its last newline, which ssh needs.
                key = write_private(self.scratch, "id_gitops", remote.ssh_key.strip() + "\n")
                ssh += ["-i", key, "-o", "IdentitiesOnly=yes"]
            if remote.ssh_known_hosts:
                known = write_private(self.scratch, "known_hosts", remote.ssh_known_hosts.strip() + "\n")
                ssh += ["-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes"]
            else:
                ssh += ["-o", "StrictHostKeyChecking=accept-new"]
            env["GIT_SSH_COMMAND"] = " ".join(shlex.quote(word) for word in ssh)
        if remote.transport == "http" and remote.token:
            credential = base64.b64encode(f"{remote.token_user}:{remote.token}".encode()).decode()
            self.secrets += [remote.token, credential]
            parts = urlsplit(remote.url)
            scope = urlunsplit((parts.scheme, parts.netloc, "/", "", ""))  # this server only
            index = int(env.get("GIT_CONFIG_COUNT") or 0)
            env[f"GIT_CONFIG_KEY_{index}"] = f"http.{scope}.extraHeader"
            env[f"GIT_CONFIG_VALUE_{index}"] = f"Authorization: Basic {credential}"
            env["GIT_CONFIG_COUNT"] = str(index + 1)
        return env

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, SCRUBBED)
        return text.strip()

    def run(self, *args: str, network: bool = False, check: bool = True) -> subprocess.CompletedProcess[str]:
        """git ARGS in the work tree (or, before it exists, in the scratch folder)."""
        where = self.work_tree if os.path.isdir(self.work_tree) else self.scratch
        timeout = NETWORK_TIMEOUT if network else LOCAL_TIMEOUT
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=where,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            raise GitOpsError("failed", "git is not installed on the controller") from None
        except subprocess.TimeoutExpired:
            raise GitOpsError(
                "unreachable", f"git {args[0]} with {self.remote.shown} took more than {timeout} s"
            ) from None
        if check and done.returncode != 0:
            said = self.scrub(done.stderr or done.stdout)
            if network:
                raise GitOpsError("unreachable", f"git {args[0]} with {self.remote.shown} failed: {said}")
            raise GitOpsError("failed", f"git {args[0]} in {self.work_tree} failed: {said}")
        return done

    def output(self, *args: str, network: bool = False) -> str:
        return self.run(*args, network=network).stdout.strip()

    # --- what the clone holds --------------------------------------------------------------

    def state(self) -> str:
        """missing, empty (a folder without files), clone (the top of a work tree) or foreign."""
        if not os.path.exists(self.work_tree):
            return "missing"
        if not os.path.isdir(self.work_tree):
            return "foreign"
        if not os.listdir(self.work_tree):
            return "empty"
        top = self.run("rev-parse", "--show-toplevel", check=False)
        if top.returncode == 0 and os.path.realpath(top.stdout.strip()) == os.path.realpath(self.work_tree):
            return "clone"
        return "foreign"

    def commit_of(self, ref: str) -> str:
        """The commit `ref` names, "" when it names none (an unborn branch, a missing ref)."""
        found = self.run("rev-parse", "-q", "--verify", f"{ref}^{{commit}}", check=False)
        return found.stdout.strip() if found.returncode == 0 else ""

    def head(self) -> str:
        return self.commit_of("HEAD")

    def branch(self) -> str:
        return self.run("symbolic-ref", "-q", "--short", "HEAD", check=False).stdout.strip()

    def origin(self) -> str:
        return self.run("config", "--get", "remote.origin.url", check=False).stdout.strip()

    def is_ancestor(self, older: str, newer: str) -> bool:
        return self.run("merge-base", "--is-ancestor", older, newer, check=False).returncode == 0

    def changed_files(self, *pathspecs: str) -> list[str]:
        """Files that differ from HEAD (untracked ones included), under `pathspecs` if given."""
        listing = self.output_raw("status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *pathspecs)
        files: list[str] = []
        entries = iter(listing.split("\0"))
        for entry in entries:
            if not entry:
                continue
            files.append(entry[3:])
            if entry[0] in "RC":  # a rename's or copy's source follows
                files.append(next(entries, ""))
        return sorted(name for name in set(files) if name)

    def output_raw(self, *args: str) -> str:
        return self.run(*args).stdout

    def unfinished(self) -> list[str]:
        """The operations git left in the middle (a merge, a rebase...)."""
        git_dir = os.path.join(self.work_tree, self.output("rev-parse", "--git-dir"))
        return [name for name in UNFINISHED if os.path.exists(os.path.join(git_dir, name))]

    # --- talking to the remote --------------------------------------------------------------

    def remote_head(self) -> str:
        """The remote branch's commit, asked without a clone; "" when the branch does not exist."""
        answer = self.output(
            "ls-remote", "--heads", "--", self.remote.url, f"refs/heads/{self.remote.branch}", network=True
        )
        return answer.split()[0] if answer else ""

    def fetch(self) -> str:
        """Every branch of origin into refs/remotes/origin/ (none on an empty remote); the branch's commit."""
        self.run("fetch", "-q", "--prune", "origin", "+refs/heads/*:refs/remotes/origin/*", network=True)
        return self.commit_of(self.tracking)

    def push(self) -> bool:
        """Push HEAD to the branch; False when the remote rejects it because it moved on."""
        pushed = self.run(
            "push",
            "--porcelain",
            "origin",
            f"HEAD:refs/heads/{self.remote.branch}",
            network=True,
            check=False,
        )
        if pushed.returncode == 0:
            return True
        if (
            "\t[rejected]" in pushed.stdout
        ):  # non-fast-forward or fetch first; not "[remote rejected]" (a hook)
            return False
        said = self.scrub("\n".join(part for part in (pushed.stdout, pushed.stderr) if part.strip()))
        raise GitOpsError(
            "unreachable", f"pushing to {self.remote.shown} ({self.remote.branch}) failed: {said}"
        )


def _checked_clone(git: Session) -> None:
    """Fail unless the work tree is a clone of the remote, with no git operation left in the middle."""
    if git.state() != "clone":
        raise GitOpsError(
            "not_a_clone",
            f"{git.work_tree} holds files and is not a Git clone of {git.remote.shown}: move it away "
            "(the next deploy writes the tree again) or make it a clone of that repository",
        )
    origin = git.origin()
    if origin.rstrip("/") != git.remote.url.rstrip("/"):
        raise GitOpsError(
            "other_remote",
            f"{git.work_tree} is a clone of {without_password(origin) or 'no remote'}, "
            f"not of {git.remote.shown}: point the repository setting at the folder's remote, or use "
            "another folder",
        )
    unfinished = git.unfinished()
    if unfinished:
        raise GitOpsError(
            "dirty",
            f"{git.work_tree} is in the middle of a git operation ({', '.join(unfinished)}): "
            "finish or abort it first",
        )


def checkout(
    work_tree: str, remote: Remote, author: Author | None = None, check_mode: bool = False
) -> Outcome:
    """Make `work_tree` a clone of the remote at the head of its branch.

    Missing or empty: cloned (an empty remote gives an empty clone on the branch, which the first
    push creates). A clone of the remote without changes: fetched and fast-forwarded; local
    commits the remote lacks are kept for the next push, unless the remote moved on too
    (diverged). Anything else fails naming the folder: uncommitted files, a clone of another
    remote, a folder of files that is no clone. In check mode the remote is only asked for its
    head and nothing is written.
    """
    check_remote(remote)
    outcome = Outcome(remote=remote.shown, branch=remote.branch)
    with Session(work_tree, remote, author) as git:
        state = git.state()
        if state in ("missing", "empty"):
            outcome.changed = outcome.cloned = True
            if check_mode:
                outcome.head = outcome.commit = git.remote_head()
                return outcome
            os.makedirs(git.work_tree, exist_ok=True)
            git.run("init", "-q")
            git.run("symbolic-ref", "HEAD", f"refs/heads/{remote.branch}")
            git.run("remote", "add", "origin", remote.url)
            if git.fetch():
                git.run("checkout", "-q", "--no-track", "-B", remote.branch, git.tracking)
            outcome.head = outcome.commit = git.head()
            return outcome

        _checked_clone(git)
        dirty = git.changed_files()
        if dirty:
            raise GitOpsError(
                "dirty",
                f"{git.work_tree} has changes that are not committed: {listed(dirty)}. Publish or discard "
                f"them (git -C {shlex.quote(git.work_tree)} stash -u, or checkout/clean) before the run",
            )
        before = git.head()
        on_branch = git.branch() == remote.branch
        if check_mode:
            remote_head = git.remote_head()
            behind = bool(remote_head) and remote_head != before and not git.is_ancestor(remote_head, before)
            outcome.changed = behind or not on_branch
            outcome.head = outcome.commit = remote_head if behind else before
            return outcome

        remote_head = git.fetch()
        if not on_branch:
            if remote_head:
                git.run("checkout", "-q", "--no-track", "-B", remote.branch, git.tracking)
            elif before:
                git.run("checkout", "-q", "-B", remote.branch)
            else:
                git.run("symbolic-ref", "HEAD", f"refs/heads/{remote.branch}")
        elif remote_head and not before:
            git.run("checkout", "-q", "--no-track", "-B", remote.branch, git.tracking)
        elif remote_head and git.is_ancestor(before, remote_head):
            git.run("merge", "-q", "--ff-only", git.tracking)
        elif remote_head and not git.is_ancestor(remote_head, before):
            raise GitOpsError(
                "diverged",
                f"{git.work_tree} has commits that {remote.shown} ({remote.branch}) does not have, and "
                f"the remote moved on: push or drop them (git -C {shlex.quote(git.work_tree)} reset --hard "
                f"origin/{remote.branch}; the next run writes the tree again)",
            )
        outcome.head = outcome.commit = git.head()
        outcome.changed = outcome.head != before or not on_branch
        return outcome


def publish(
    work_tree: str,
    remote: Remote,
    author: Author,
    paths: list[str],
    message: str,
    *,
    check_mode: bool = False,
) -> Outcome:
    """Commit what changed under `paths` (relative to the tree) in one commit and push it.

    Nothing changed there: no commit (commits of an earlier run that were not pushed are pushed
    still). Only those paths go into the commit, whatever else differs in the tree. A push the
    remote rejects because it moved on is rebased onto the remote's branch once and pushed again;
    a conflict or a second rejection fails naming the remote, and the commit stays in the clone
    (not pushed). In check mode: the files that would be committed, and nothing is written.
    """
    check_remote(remote)
    if not message.strip():
        raise GitOpsError("bad_input", "the commit message is empty")
    wanted = check_paths(paths)
    outcome = Outcome(remote=remote.shown, branch=remote.branch)
    with Session(work_tree, remote, author) as git:
        if check_mode and git.state() in ("missing", "empty"):
            return outcome  # the checkout would clone it: nothing is written there in check mode
        _checked_clone(git)
        files = git.changed_files(*[f":(literal){path}" for path in wanted]) if wanted else []
        outcome.files = files
        if check_mode:
            head = git.head()
            outcome.changed = bool(files) or (bool(head) and head != git.commit_of(git.tracking))
            outcome.head = head
            return outcome

        if files:
            pathspecs = [f":(literal){path}" for path in wanted if under(path, files)]
            git.run("add", "-A", "--", *pathspecs)
            git.run("commit", "-q", "--no-verify", "--only", "-m", message, "--", *pathspecs)
        head = git.head()
        if not head or head == git.commit_of(git.tracking):
            outcome.head = head
            return outcome  # nothing to push
        if not git.push():
            git.fetch()
            _rebase(git)
            outcome.rebased = True
            if git.head() == git.commit_of(git.tracking):  # the remote holds the same change already
                outcome.head = git.head()
                return outcome
            if not git.push():
                raise GitOpsError(
                    "rejected",
                    f"{remote.shown} rejected the push to {remote.branch} again after it was rebased onto "
                    "the remote's branch (another run pushes at the same time?); the commit stays in "
                    f"{git.work_tree}",
                )
        outcome.changed = outcome.pushed = True
        outcome.head = outcome.commit = git.head()
        if files:
            outcome.files = sorted(
                git.output("diff-tree", "--no-commit-id", "--name-only", "-r", "--root", "HEAD").splitlines()
            )
        return outcome


def _rebase(git: Session) -> None:
    """Rebase the clone's commits onto the fetched remote branch, or undo the attempt and fail."""
    rebased = git.run("rebase", "-q", "--autostash", git.tracking, check=False)
    if rebased.returncode == 0:
        return
    conflicts = git.run("diff", "--name-only", "--diff-filter=U", check=False).stdout.split()
    git.run("rebase", "--abort", check=False)
    remote = git.remote
    why = f"conflicts in {listed(conflicts)}" if conflicts else git.scrub(rebased.stderr)
    raise GitOpsError(
        "conflict",
        f"{remote.shown} rejected the push to {remote.branch} (it moved on), and this run's commit does "
        f"not rebase onto it: {why}. The commit stays in {git.work_tree}, not pushed: resolve it there, "
        f"or drop it (git -C {shlex.quote(git.work_tree)} reset --hard origin/{remote.branch}) and run again",
    )
