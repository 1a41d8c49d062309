"""Creating one of harden's KMS keys (the EBS key, the alarm topic key) exactly once, even when two
`harden remediate --apply` run at the same time or one was killed half-way.

A key is known by its alias; CreateKey and CreateAlias are two calls, so a run can die, or lose
a race, between them. Every key harden creates carries the tag `harden:key-for=<alias>`, so:

1. the alias exists: that key is used;
2. an enabled key tagged for the alias has no alias (a run died between the two calls): it is
   adopted (rotation on, alias created), not duplicated. Tags prove nothing (anyone allowed to
   tag can write them), so only a key whose policy is exactly the one harden gives is adopted:
   such a key is what harden would have created;
3. otherwise a new key is created, tagged, rotation on, then the alias: if another run created
   the alias first, the new key is redundant and its deletion is scheduled (the shortest window,
   7 days, so it can still be cancelled); if creating the alias fails for another reason the key
   is kept and a re-run adopts it. The message says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import json

import botocore.exceptions

from provisioner.aws import describe_error, error_code, paginate

KEY_TAG = "harden:key-for"
PENDING_WINDOW_DAYS = 7   # the shortest KMS allows: https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys.html
# CreateKey with Tags needs kms:TagResource as well:
# https://docs.aws.amazon.com/kms/latest/developerguide/tagging-permissions.html
KEY_CALLS = ["kms:CreateKey", "kms:TagResource", "kms:EnableKeyRotation", "kms:CreateAlias", "kms:ListKeys",
             "kms:ListResourceTags", "kms:ListAliases", "kms:DescribeKey", "kms:GetKeyPolicy",
             "kms:ScheduleKeyDeletion"]


@dataclass(frozen=True)
class KeyOutcome:
    arn: str
    message: str


def _alias_target(kms, alias: str) -> dict | None:
    try:
        return kms.describe_key(KeyId=alias)["KeyMetadata"]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "NotFoundException":
            raise
        return None


def _orphans(kms, alias: str, policy: dict) -> list[dict]:
    """Enabled customer keys tagged as made for `alias`, with harden's policy, that no alias
    points to, oldest first."""
    found = []
    for key in paginate(kms, "list_keys", "Keys"):
        try:
            tags = {t["TagKey"]: t["TagValue"] for t in paginate(kms, "list_resource_tags", "Tags",
                                                                  KeyId=key["KeyId"])}
            if tags.get(KEY_TAG) != alias:
                continue
            meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
            if meta.get("KeyState") != "Enabled" or meta.get("KeyManager") != "CUSTOMER":
                continue
            if paginate(kms, "list_aliases", "Aliases", KeyId=key["KeyId"]):
                continue
            if json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]) != policy:
                continue
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) in ("AccessDeniedException", "NotFoundException"):
                continue  # a key we may not read is not one we made
            raise
        found.append(meta)
    return sorted(found, key=lambda m: (str(m.get("CreationDate")), m["KeyId"]))


def ensure_key(kms, alias: str, policy: dict, create: Callable[[list[dict]], dict]) -> KeyOutcome:
    """The ARN of the key behind `alias`, adopting or creating it as above. `create(tags)` makes
    the key (CreateKey with the caller's description, `policy`, and these extra tags) and
    returns its KeyMetadata."""
    existing = _alias_target(kms, alias)
    if existing:
        return KeyOutcome(existing["Arn"], f"{alias} exists: {existing['Arn']}")
    orphans = _orphans(kms, alias, policy)
    if orphans:
        key, how = orphans[0], "adopted"
    else:
        key, how = create([{"TagKey": KEY_TAG, "TagValue": alias}]), "created"
    try:
        kms.enable_key_rotation(KeyId=key["KeyId"])
        kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "AlreadyExistsException":
            raise RuntimeError(f"{how} key {key['Arn']}, then {describe_error(exc)}; the key is kept, tagged "
                               f"{KEY_TAG}={alias}: a re-run adopts it") from None
        winner = _alias_target(kms, alias)
        if winner and winner["KeyId"] == key["KeyId"]:  # another run adopted our key: the same outcome
            return KeyOutcome(key["Arn"], f"{how} {key['Arn']} as {alias}")
        if how == "adopted":
            return KeyOutcome(winner["Arn"] if winner else key["Arn"],
                              f"another run created {alias} first ({winner['Arn'] if winner else '?'}); "
                              f"{key['Arn']} is left for a re-run to look at")
        kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=PENDING_WINDOW_DAYS)
        return KeyOutcome(winner["Arn"] if winner else key["Arn"],
                          f"another run created {alias} first: using its key {winner['Arn'] if winner else '?'}; "
                          f"scheduled the deletion of the redundant new key {key['Arn']} in {PENDING_WINDOW_DAYS} "
                          f"days (aws kms cancel-key-deletion --key-id {key['KeyId']} keeps it)")
    suffix = " (left without its alias by an earlier run)" if how == "adopted" else ""
    return KeyOutcome(key["Arn"], f"{how} {key['Arn']} as {alias}{suffix}")
