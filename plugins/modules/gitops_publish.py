# SPDX-License-Identifier: Apache-2.0
"""Keep a folder a clone of a GitOps repository, and commit and push the paths a run wrote."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gitops_publish
short_description: Clone a GitOps repository into a folder, then commit named paths and push them
version_added: 0.1.0
description:
  - "With O(operation=checkout): makes O(path) a clone of O(repo) at the remote head of O(branch).
    A missing or empty folder is cloned; an empty remote gives an empty clone, and the first push
    creates the branch. A clone of O(repo) without changes is fetched and fast-forwarded; commits
    of an earlier run that were not pushed are kept for the next push."
  - "The checkout fails naming the folder when it holds changes that are not committed (and the
    files), when it is a clone of another remote, when it holds files and is no clone, or when it
    has commits the remote lacks while the remote moved on."
  - "With O(operation=publish): stages only O(paths) (folders or files relative to O(path)), makes
    one commit with O(commit_message) when something changed there (none otherwise, and RV(ignore:changed)
    is false), and pushes it to O(branch)."
  - "A push the remote rejects because it moved on (not a fast-forward) is rebased once onto the
    remote's branch and pushed again. A conflict, a second rejection or any other failure fails
    naming the remote (without credentials); the commit then stays in the clone, not pushed."
  - "Credentials reach git only through each command's environment: O(ssh_key) in a 0600 temporary
    file for C(GIT_SSH_COMMAND), removed afterwards; O(token) as an C(http.extraHeader)
    (C(Authorization: Basic)) scoped to the remote's server. Neither is written into the clone's
    C(.git/config) nor shown in the result or in failure messages."
  - Runs the C(git) command (2.31 or later) of the host the module runs on, usually the controller.
author: edgeai.appliance maintainers (!UNKNOWN)
requirements:
  - git 2.31 or later on the host that runs the module
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: >-
      Checkout asks the remote for its head and writes nothing; publish lists the files that would
      be committed and commits and pushes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  operation:
    description:
      - V(checkout) makes O(path) a clone at the remote head; V(publish) commits O(paths) and pushes.
    type: str
    choices: [checkout, publish]
    default: publish
  path:
    description:
      - The work tree, the folder the manifests are written to.
    type: path
    required: true
  repo:
    description:
      - "The repository's URL: C(ssh://), C(git@host:path), C(https://), C(http://), C(git://),
        C(file://) or a local path. A URL with a password is refused: give it as O(token)."
    type: str
    required: true
  branch:
    description:
      - The branch to follow and push to.
    type: str
    default: main
  paths:
    description:
      - "With O(operation=publish): the paths inside O(path) whose changes (new, changed and deleted
        files) go into the commit; nothing else of the tree does."
    type: list
    elements: str
    default: []
  commit_message:
    description:
      - With O(operation=publish), the commit message. Required then.
    type: str
  author_name:
    description:
      - Author and committer of the commits.
    type: str
    default: edgeai.appliance
  author_email:
    description:
      - Their e-mail address.
    type: str
    default: edgeai.appliance@localhost
  ssh_key:
    description:
      - A private key (its text) for an SSH remote. Empty uses the SSH agent and configuration of the
        user running the module.
    type: str
    default: ""
  ssh_known_hosts:
    description:
      - "known_hosts lines of the SSH remote's server: its key is then checked strictly. Empty accepts
        the key of a server seen for the first time and checks it afterwards (the user's known_hosts)."
    type: str
    default: ""
  token:
    description:
      - A token or password for an HTTP(S) remote, sent as HTTP basic authentication with O(token_user).
    type: str
    default: ""
  token_user:
    description:
      - The user name sent with O(token) (forges that identify the token alone accept any).
    type: str
    default: git
notes:
  - Run it with C(no_log) where its arguments come from a vault; its failure message (C(msg)) never
    holds them, so a following task may show it.
"""

EXAMPLES = r"""
- name: Make the manifests folder a clone of the site's GitOps repository
  edgeai.appliance.gitops_publish:
    operation: checkout
    path: /srv/edge/gitops
    repo: git@git.example.com:edge/devices.git
    ssh_key: "{{ vault_gitops_ssh_key }}"
  no_log: true

- name: Commit and push the trees of the devices of this wave
  edgeai.appliance.gitops_publish:
    path: /srv/edge/gitops
    repo: https://git.example.com/edge/devices.git
    token: "{{ vault_gitops_token }}"
    paths: [jetson-01, nuc-01, applicationset.yaml]
    commit_message: "retrain: model 2612051330 to jetson-01, nuc-01"
  register: gitops
  no_log: true
"""

RETURN = r"""
commit:
  description:
    - publish, the commit this run pushed (the remote branch's head now); empty when nothing was pushed.
    - checkout, the commit checked out (would be, in check mode); empty for an empty remote.
  returned: always
  type: str
  sample: 3f1c2a9e8b7d6c5b4a39281706f5e4d3c2b1a098
head:
  description: The clone's HEAD afterwards, empty before the first commit.
  returned: always
  type: str
files:
  description: publish, the files of the commit (in check mode, the files that would be committed).
  returned: always
  type: list
  elements: str
  sample: [dev1/webapp/deployment-webapp.yaml, dev2/webapp/deployment-webapp.yaml]
cloned:
  description: checkout, whether the folder was cloned (would be, in check mode).
  returned: always
  type: bool
pushed:
  description: publish, whether commits were pushed.
  returned: always
  type: bool
rebased:
  description: publish, whether the push was rejected once and the commit rebased onto the remote's branch.
  returned: always
  type: bool
remote:
  description: The repository's URL without credentials.
  returned: always
  type: str
branch:
  description: The branch.
  returned: always
  type: str
reason:
  description: >-
    On failure: bad_input, not_a_clone, other_remote, dirty, diverged, conflict, rejected, unreachable
    or failed.
  returned: failure
  type: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.edgeai.appliance.plugins.module_utils.gitops import (  # noqa: E402
    Author,
    GitOpsError,
    Outcome,
    Remote,
    checkout,
    publish,
    without_password,
)

ARGUMENT_SPEC = {
    "operation": {"type": "str", "choices": ["checkout", "publish"], "default": "publish"},
    "path": {"type": "path", "required": True},
    "repo": {"type": "str", "required": True},
    "branch": {"type": "str", "default": "main"},
    "paths": {"type": "list", "elements": "str", "default": []},
    "commit_message": {"type": "str"},
    "author_name": {"type": "str", "default": "edgeai.appliance"},
    "author_email": {"type": "str", "default": "edgeai.appliance@localhost"},
    "ssh_key": {"type": "str", "default": "", "no_log": True},
    "ssh_known_hosts": {"type": "str", "default": ""},
    "token": {"type": "str", "default": "", "no_log": True},
    "token_user": {"type": "str", "default": "git", "no_log": False},
}


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("operation", "publish", ("commit_message",))],
        supports_check_mode=True,
    )
    params = module.params
    remote = Remote(
        url=params["repo"],
        branch=params["branch"],
        ssh_key=params["ssh_key"],
        ssh_known_hosts=params["ssh_known_hosts"],
        token=params["token"],
        token_user=params["token_user"],
    )
    author = Author(params["author_name"], params["author_email"])
    try:
        if params["operation"] == "checkout":
            outcome = checkout(params["path"], remote, author, check_mode=module.check_mode)
        else:
            outcome = publish(
                params["path"],
                remote,
                author,
                params["paths"],
                params["commit_message"],
                check_mode=module.check_mode,
            )
    except GitOpsError as error:
        failed = Outcome(remote=without_password(remote.url), branch=remote.branch).as_dict()
        module.fail_json(msg=str(error), reason=error.reason, **failed)
    module.exit_json(**outcome.as_dict())


if __name__ == "__main__":
    main()
