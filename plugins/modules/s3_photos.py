# SPDX-License-Identifier: Apache-2.0
"""The people's photos in the model store: what is pending, and the training folder made from them."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_photos
short_description: Read the people's photos and forget markers of the model store for retrain
version_added: 0.1.0
description:
  - "Reads the keys under C(photos/) (C(photos/<name>/<sha256>.jpg), one training photo of a person) and
    C(forget/) (C(forget/<name>.json), a person forgotten by an operator) of O(bucket), the layout the web
    app writes, and their digest: the sha256 of the sorted keys, each followed by a newline."
  - "O(mode=status) compares the digest with the one each of O(versions) was trained at (its
    C(<version>/sources.json); a version without one counts as trained on an empty store) and says which
    are behind the store. It only reads."
  - "O(mode=prepare) makes O(dest) the training folder, afresh and readable by its owner only: the
    store's photos downloaded unchanged as C(<name>/<sha256>.jpg) (each checked against its sha256), and
    the entries of O(photos_dir) linked (or, for a folder of the original demo's C(metadata.yaml), one
    C(metadata.yaml) listing both). A person of both is the folder's; a forgotten person is in neither.
    It removes the encodings of the photos each forget marker lists from O(cache_dir) and writes
    O(sources), the C(sources.json) of the version to be trained."
  - A missing bucket holds no photos. Failure messages never carry the credentials; RV(reason) says what
    went wrong.
author: edgeai.appliance maintainers (!UNKNOWN)
requirements:
  - boto3 on the host that runs the module
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - edgeai.appliance.s3
attributes:
  check_mode:
    support: full
    details: Reads the store and reports what would be downloaded, linked, excluded, removed; writes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  bucket:
    description:
      - The bucket of the models, the photos and the forget markers.
    type: str
    required: true
  mode:
    description:
      - V(status) reads the store and O(versions)' sources; V(prepare) makes the training folder.
    type: str
    choices: [status, prepare]
    default: status
  versions:
    description:
      - With O(mode=status), the model versions to compare with the store (V(initial) is the empty model).
    type: list
    elements: str
    default: []
  dest:
    description:
      - With O(mode=prepare), the training folder to make; what it held is removed first.
    type: path
  photos_dir:
    description:
      - With O(mode=prepare), the user's own folder of photos (C(Name.jpg), C(Name/*.jpg) or
        C(metadata.yaml)), joined to the store's.
    type: path
  cache_dir:
    description:
      - With O(mode=prepare), the encoding cache (C(<cache_dir>/<fingerprint>/<sha256>.json)) the forgotten
        photos' encodings are removed from.
    type: path
  sources:
    description:
      - With O(mode=prepare), where to write the version's C(sources.json) (mode 0640).
    type: path
"""

EXAMPLES = r"""
- name: Is anything pending for model 2412011200?
  edgeai.appliance.s3_photos:
    endpoint_url: http://192.0.2.20:30900
    access_key: "{{ s3_access_key }}"
    secret_key: "{{ s3_secret_key }}"
    bucket: models
    versions: ["2412011200"]
  register: store
  no_log: true

- name: Make the training folder of model 2412011300
  edgeai.appliance.s3_photos:
    endpoint_url: http://192.0.2.20:30900
    access_key: "{{ s3_access_key }}"
    secret_key: "{{ s3_secret_key }}"
    bucket: models
    mode: prepare
    dest: /home/me/.cache/retrain/2412011300/photos
    photos_dir: /home/me/photos
    cache_dir: /home/me/.cache/retrain/cache
    sources: /home/me/.cache/retrain/2412011300/sources.json
  no_log: true
"""

RETURN = r"""
digest:
  description: The store's digest.
  returned: success
  type: str
  sample: sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
people:
  description: The names with photos in the store.
  returned: success
  type: list
  elements: str
forgotten:
  description: The names with a forget marker.
  returned: success
  type: list
  elements: str
ignored:
  description: Keys under photos/ or forget/ not of the layout (never used), and why.
  returned: success
  type: list
  elements: dict
versions:
  description: With O(mode=status), per version the digest it was trained at (empty when its sources.json
    cannot be read) and whether the store is ahead of it.
  returned: success
  type: dict
  sample: {"2412011200": {"digest": "sha256:e3b0c442...", "pending": false}}
trained:
  description: With O(mode=prepare), the store's keys in the training folder.
  returned: success
  type: list
  elements: str
linked:
  description: With O(mode=prepare), the entries of O(photos_dir) in the training folder.
  returned: success
  type: list
  elements: str
excluded:
  description: With O(mode=prepare), the names of O(photos_dir) left out because they are forgotten.
  returned: success
  type: list
  elements: str
overridden:
  description: With O(mode=prepare), the store's names O(photos_dir) has too (the folder's photos are used).
  returned: success
  type: list
  elements: str
skipped:
  description: With O(mode=prepare), the store's photos left out (damaged, gone), and why.
  returned: success
  type: list
  elements: dict
encodings_removed:
  description: With O(mode=prepare), how many cached encodings of forgotten photos were removed.
  returned: success
  type: int
sources:
  description: With O(mode=prepare), the content of O(sources).
  returned: success
  type: dict
reason:
  description: On failure, credentials_refused, unreachable or failed.
  returned: failure
  type: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402
from ansible_collections.edgeai.appliance.plugins.module_utils.s3_photos import (  # noqa: E402
    assemble,
    forget_encodings,
    read_store,
    sources,
    version_digest,
    write_sources,
)
from ansible_collections.edgeai.appliance.plugins.module_utils.s3_versions import (  # noqa: E402
    CONNECTION_ARGUMENT_SPEC,
    PublishError,
    boto3,
    connect,
)

ARGUMENT_SPEC = {
    **CONNECTION_ARGUMENT_SPEC,
    "mode": {"type": "str", "choices": ["status", "prepare"], "default": "status"},
    "versions": {"type": "list", "elements": "str", "default": []},
    "dest": {"type": "path"},
    "photos_dir": {"type": "path"},
    "cache_dir": {"type": "path"},
    "sources": {"type": "path"},
}


def status(client: object, params: dict) -> dict:
    store = read_store(client, params["bucket"])
    versions = {}
    for version in params["versions"]:
        digest = version_digest(client, params["bucket"], version)
        versions[version] = {"digest": digest or "", "pending": digest != store.digest}
    return {"changed": False, "store": store, "versions": versions}


def prepare(client: object, params: dict, check_mode: bool) -> dict:
    store = read_store(client, params["bucket"], markers=True)
    chosen = assemble(
        client,
        params["bucket"],
        store,
        params["dest"],
        photos_dir=params["photos_dir"] or "",
        check_mode=check_mode,
    )
    removed = forget_encodings(
        params["cache_dir"] or "", [sha for shas in store.forgotten.values() for sha in shas], check_mode
    )
    record = sources(store, chosen)
    if params["sources"] and not check_mode:
        write_sources(params["sources"], record)
    return {
        "changed": True,
        "store": store,
        "trained": chosen.trained,
        "linked": chosen.linked,
        "excluded": chosen.excluded,
        "overridden": chosen.overridden,
        "skipped": chosen.skipped,
        "encodings_removed": len(removed),
        "sources": record,
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("mode", "prepare", ["dest"])],
        supports_check_mode=True,
    )
    if boto3 is None:
        module.fail_json(msg=missing_required_lib("boto3"))
    params = module.params
    try:
        client = connect(params)
        if params["mode"] == "prepare":
            result = prepare(client, params, module.check_mode)
        else:
            result = status(client, params)
    except PublishError as error:
        module.fail_json(msg=str(error), reason=error.reason)
    except OSError as error:
        module.fail_json(msg=f"cannot write the training folder or sources: {error}", reason="failed")
    store = result.pop("store")
    module.exit_json(
        digest=store.digest,
        people=store.people,
        forgotten=sorted(store.forgotten),
        ignored=store.skipped,
        **result,
    )


if __name__ == "__main__":
    main()
