"""ec2.ami_currency: every running instance runs an image that still exists, is not deprecated,
is younger than ami.max_age_days and, when ami.allowed_owners is set, comes from an allowed owner.

Report-only: replacing an instance's image is an application change (a new launch template
version, a rollout), not something a hardening tool does behind a team's back. `harden ec2 amis`
prints the same findings as the seed document's `describe-instances` table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from provisioner.aws import paginate
from provisioner.controls import CheckContext, Mappings, control
from provisioner.controls.alarms import running_instances
from provisioner.findings import Finding

# DescribeImages accepts up to 200 values per filter (the documented limit of filter values).
_FILTER_CHUNK = 200


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def images(ctx: CheckContext, image_ids: list[str]) -> dict[str, dict]:
    """The images the instances run, by id. A filter (not ImageIds) so an id that no longer
    exists is simply absent instead of failing the whole call with InvalidAMIID.NotFound; with a
    filter DescribeImages leaves deprecated and disabled images out unless asked
    (IncludeDeprecated / IncludeDisabled:
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImages.html)."""
    def fetch() -> dict[str, dict]:
        found: dict[str, dict] = {}
        ids = sorted(set(image_ids))
        for start in range(0, len(ids), _FILTER_CHUNK):
            chunk = ids[start:start + _FILTER_CHUNK]
            for image in paginate(ctx.client("ec2"), "describe_images", "Images",
                                  Filters=[{"Name": "image-id", "Values": chunk}],
                                  IncludeDeprecated=True, IncludeDisabled=True):
                found[image["ImageId"]] = image
        return found

    return ctx.cached("ec2:images_in_use", fetch)


def _name_tag(resource: dict) -> str | None:
    return next((t["Value"] for t in resource.get("Tags") or [] if t.get("Key") == "Name"), None)


def image_row(ctx: CheckContext, instance: dict, image: dict | None) -> dict[str, Any]:
    """One row of the AMI table: instance, AMI, its name, owner, age, deprecation."""
    created = _parse_time((image or {}).get("CreationDate"))
    deprecated_at = _parse_time((image or {}).get("DeprecationTime"))
    return {
        "instance_id": instance["InstanceId"],
        "instance_name": _name_tag(instance),
        "image_id": instance.get("ImageId"),
        "image_name": (image or {}).get("Name"),
        "owner_id": (image or {}).get("OwnerId"),
        "owner_alias": (image or {}).get("ImageOwnerAlias"),
        "creation_date": (image or {}).get("CreationDate"),
        "age_days": (ctx.now - created).days if created else None,
        "deprecation_time": (image or {}).get("DeprecationTime"),
        "deprecated": bool(deprecated_at and deprecated_at <= ctx.now),
        "image_state": (image or {}).get("State"),
        "exists": image is not None,
    }


def problems(ctx: CheckContext, row: dict[str, Any]) -> list[str]:
    settings = ctx.baseline.ami
    if not row["exists"]:
        return ["the image no longer exists (deregistered, or no longer shared with this account): "
                "the instance cannot be rebuilt from it"]
    found = []
    if row["deprecated"]:
        found.append(f"the image is deprecated since {row['deprecation_time']}")
    if row["image_state"] not in (None, "available"):
        found.append(f"the image is {row['image_state']}")
    if row["age_days"] is None:
        found.append("the image has no creation date, so its age is unknown")
    elif row["age_days"] > settings.max_age_days:
        found.append(f"the image is {row['age_days']} days old (ami.max_age_days = {settings.max_age_days})")
    if settings.allowed_owners and not ({row["owner_id"], row["owner_alias"]} & set(settings.allowed_owners)):
        owner = row["owner_alias"] or row["owner_id"]
        found.append(f"the image's owner {owner} is not in ami.allowed_owners")
    return found


def describe_row(row: dict[str, Any]) -> str:
    who = row["instance_id"] + (f" ({row['instance_name']})" if row["instance_name"] else "")
    if not row["exists"]:
        return f"{who} runs {row['image_id']}"
    owner = row["owner_alias"] or row["owner_id"] or "?"
    age = f"{row['age_days']} days old" if row["age_days"] is not None else "age unknown"
    return f"{who} runs {row['image_id']} ({row['image_name'] or 'no name'}, owner {owner}, {age})"


@control("ec2.ami_currency", title="Running instances use current, non-deprecated images from allowed owners",
         scope="regional", severity="medium",
         rationale="an old, deprecated or unvetted image carries unpatched packages; the risk grows with age "
         "but needs an exposed service to be exploited",
         mappings=Mappings(none="from the seed document (keep instances on current AMIs); CIS and Security Hub "
                           "have no image-age control"),
         fix="rebuild the instance from a current image of an allowed owner (a new launch template version); "
         "EC2 Allowed AMIs (the allowed_amis module, when ami.allowed_owners is set) keeps new launches on them",
         terraform="allowed_amis/aws_ec2_allowed_images_settings.this")
def ami_currency(ctx: CheckContext) -> list[Finding]:
    """Every running instance's AMI exists, is not deprecated, is at most ami.max_age_days old
    and, when ami.allowed_owners is set, is owned by one of them. Report-only."""
    instances = sorted(running_instances(ctx), key=lambda i: i["InstanceId"])
    known = images(ctx, [i["ImageId"] for i in instances if i.get("ImageId")])
    findings: list[Finding] = []
    for instance in instances:
        row = image_row(ctx, instance, known.get(instance.get("ImageId")))
        found = problems(ctx, row)
        if found:
            findings.append(ctx.failed(row["instance_id"], f"{describe_row(row)}: {'; '.join(found)}. Rebuild it "
                                       "from a current image (a new launch template version)", problems=found, **row))
        else:
            findings.append(ctx.passed(row["instance_id"], f"{describe_row(row)}: current", problems=[], **row))
    if not findings:
        findings.append(ctx.passed(ctx.region, "no running instance in this region", instances=0))
    return findings
