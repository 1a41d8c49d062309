"""config.*: AWS Config records every resource (Elastic IPs included) in every region and
delivers what it records to the log bucket.

Each region holds at most one customer managed recorder and one delivery channel; the three
describe calls return everything in one response (no pagination) and are cached so both
controls of a region share them. Service-linked recorders (servicePrincipal set) record only
what one AWS service needs and are not the account's recorder: they are left out.
"""

from __future__ import annotations

import botocore.exceptions

from provisioner import converge, resources
from provisioner.aws import error_code
from provisioner.baseline import Baseline
from provisioner.controls import CheckContext, Mappings, control
from provisioner.controls.cloudtrail import baseline_kms_key_arn
from provisioner.findings import Finding
from provisioner.remediate import Action, fix

GLOBAL_TYPES_ELSEWHERE_NOTE = ("global resource types are recorded outside the home region too: "
                               "duplicate configuration items and cost, not a security gap")


# ---------------------------------------------------------------------------------------------
# Shared lookups (one call each per region)

def recorders(ctx: CheckContext) -> list[dict]:
    def fetch() -> list[dict]:
        listed = ctx.client("config").describe_configuration_recorders()["ConfigurationRecorders"]
        return sorted((r for r in listed if not r.get("servicePrincipal")), key=lambda r: r["name"])

    return ctx.cached("config:recorders", fetch)


def recorder_statuses(ctx: CheckContext) -> dict[str, dict]:
    def fetch() -> dict[str, dict]:
        listed = ctx.client("config").describe_configuration_recorder_status()["ConfigurationRecordersStatus"]
        return {s["name"]: s for s in listed if not s.get("servicePrincipal")}

    return ctx.cached("config:recorder_statuses", fetch)


def delivery_channels(ctx: CheckContext) -> list[dict]:
    def fetch() -> list[dict]:
        listed = ctx.client("config").describe_delivery_channels()["DeliveryChannels"]
        return sorted(listed, key=lambda c: c["name"])

    return ctx.cached("config:delivery_channels", fetch)


def expected_bucket(baseline: Baseline, account_id: str) -> str:
    """The log bucket the baseline delivers to (the cloudtrail module's bucket)."""
    return baseline.log_bucket_name(account_id)


def _failed_status(value: str | None) -> bool:
    # The API says "Failure"; the emulator says "FAILURE".
    return (value or "").lower() == "failure"


# ---------------------------------------------------------------------------------------------
# config.recorder

def _recorder_evidence(ctx: CheckContext, recorder: dict, status: dict, home: bool) -> dict:
    group = recorder.get("recordingGroup") or {}
    mode = recorder.get("recordingMode") or {}
    return {
        "recorder": recorder["name"],
        "home_region": home,
        "recording": bool(status.get("recording")),
        "all_supported": bool(group.get("allSupported")),
        "include_global_resource_types": bool(group.get("includeGlobalResourceTypes")),
        # Absent means the API default, CONTINUOUS (the emulator does not store the mode).
        "recording_frequency": mode.get("recordingFrequency", "CONTINUOUS"),
        "recording_mode_overrides": mode.get("recordingModeOverrides") or [],
        "last_status": status.get("lastStatus"),
        "last_error": status.get("lastErrorCode") or None,
        "delivery_channels": [c["name"] for c in delivery_channels(ctx)],
    }


def _recorder_gaps(evidence: dict) -> list[str]:
    gaps = []
    if not evidence["recording"]:
        gaps.append("not recording (start-configuration-recorder)")
    if not evidence["all_supported"]:
        gaps.append("does not record all supported resource types (set allSupported)")
    if evidence["home_region"] and not evidence["include_global_resource_types"]:
        gaps.append("the home region's recorder does not record global resource types (IAM): nobody does")
    # DAILY would let an Elastic IP allocated and released within a day leave no configuration
    # item; the baseline's module declares CONTINUOUS.
    if evidence["recording_frequency"] != "CONTINUOUS":
        gaps.append(f"records {evidence['recording_frequency']}, not CONTINUOUS")
    if _failed_status(evidence["last_status"]):
        gaps.append(f"last recording attempt failed ({evidence['last_error'] or 'no error code'})")
    if not evidence["delivery_channels"]:
        gaps.append("no delivery channel: nothing it records is delivered (put-delivery-channel)")
    return gaps


@control("config.recorder", title="AWS Config records every resource type, continuously",
         scope="regional", severity="medium",
         rationale="AWS Config keeps the history of each address and interface: without it, which "
         "instance held an address last week cannot be answered",
         mappings=Mappings(cis_v3=("3.3",), cis_v4=("3.3",), securityhub=("Config.1",)),
         fix="record all supported resource types continuously in every region (`harden remediate "
         "--controls config`, or the config module)",
         terraform="config/aws_config_configuration_recorder.this")
def recorder(ctx: CheckContext) -> list[Finding]:
    """A recorder that is recording all supported resource types continuously, global types in
    the home region (elsewhere optional: only a duplicate), last status not Failure, and a
    delivery channel beside it."""
    home = ctx.region == ctx.baseline.home_region
    found = recorders(ctx)
    if not found:
        return [ctx.failed(ctx.region, "no AWS Config recorder in this region: resource changes (Elastic IPs "
                                       "included) are not recorded; create and start one",
                           recorder=None, home_region=home)]
    statuses = recorder_statuses(ctx)
    findings = []
    for rec in found:
        evidence = _recorder_evidence(ctx, rec, statuses.get(rec["name"], {}), home)
        if not home and evidence["include_global_resource_types"]:
            evidence["note"] = GLOBAL_TYPES_ELSEWHERE_NOTE
        gaps = _recorder_gaps(evidence)
        if gaps:
            findings.append(ctx.failed(rec["name"], f"recorder {rec['name']}: {'; '.join(gaps)}", **evidence))
        else:
            scope = "with global resource types" if evidence["include_global_resource_types"] else \
                "global resource types left to the home region"
            findings.append(ctx.passed(rec["name"], f"recorder {rec['name']} records all supported resource "
                                                    f"types continuously ({scope})", **evidence))
    return findings


# ---------------------------------------------------------------------------------------------
# config.delivery

def _bucket_exists(ctx: CheckContext, bucket: str) -> tuple[bool, str]:
    """(exists, how we know). HeadBucket answers 404 for a missing bucket and 403 for one that
    exists but is not readable by us (another account's log-archive bucket)."""
    def fetch() -> tuple[bool, str]:
        try:
            ctx.client("s3").head_bucket(Bucket=bucket)
        except botocore.exceptions.ClientError as exc:
            code = error_code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                return False, "not found"
            if code in ("403", "AccessDenied", "Forbidden"):
                return True, "exists, not readable by this account"
            raise
        return True, "exists"

    return ctx.cached(f"s3:head_bucket:{bucket}", fetch)


def _channel_statuses(ctx: CheckContext) -> dict[str, dict]:
    # One call for every channel of the region (no names = all).
    listed = ctx.client("config").describe_delivery_channel_status()["DeliveryChannelsStatus"]
    return {s["name"]: s for s in listed}


def _delivery_info(status: dict, key: str) -> dict:
    info = status.get(key) or {}
    last = info.get("lastSuccessfulTime")
    return {"last_status": info.get("lastStatus"), "last_error": info.get("lastErrorCode") or None,
            "last_successful_time": last.isoformat() if last else None}


def _channel_finding(ctx: CheckContext, channel: dict, status: dict) -> Finding:
    bucket = channel.get("s3BucketName") or ""
    wanted = expected_bucket(ctx.baseline, ctx.account_id)
    exists, how = _bucket_exists(ctx, bucket) if bucket else (False, "no bucket named")
    history = _delivery_info(status, "configHistoryDeliveryInfo")
    snapshot = _delivery_info(status, "configSnapshotDeliveryInfo")
    evidence = {
        "channel": channel["name"],
        "bucket": bucket,
        "baseline_bucket": wanted,
        "is_baseline_bucket": bucket == wanted,
        "bucket_state": how,
        "s3_key_prefix": channel.get("s3KeyPrefix"),
        "s3_kms_key_arn": channel.get("s3KmsKeyArn"),
        "config_history_delivery": history,
        "config_snapshot_delivery": snapshot,
        "config_stream_delivery": _delivery_info(status, "configStreamDeliveryInfo"),
    }
    gaps = []
    if not exists:
        gaps.append(f"its bucket {bucket} does not exist (create it, or point the channel at {wanted})")
    for label, info in (("configuration history", history), ("configuration snapshot", snapshot)):
        if _failed_status(info["last_status"]):
            gaps.append(f"last {label} delivery failed ({info['last_error'] or 'no error code'})")
    if gaps:
        return ctx.failed(channel["name"], f"delivery channel {channel['name']}: {'; '.join(gaps)}", **evidence)
    other = "" if bucket == wanted else f" (not the baseline's bucket {wanted}, accepted)"
    return ctx.passed(channel["name"], f"delivery channel {channel['name']} delivers to {bucket}{other}", **evidence)


@control("config.delivery", title="AWS Config delivers to the log bucket without failure",
         scope="regional", severity="low",
         rationale="a recorder without a working channel still evaluates rules, but its history is not "
         "kept durably; the gap is in retention, not in detection",
         mappings=Mappings(cis_v3=("3.3",), cis_v4=("3.3",), securityhub=("Config.1",)),
         fix="a delivery channel to the log bucket (`harden remediate --controls config.delivery`)",
         terraform="config/aws_config_delivery_channel.this")
def delivery(ctx: CheckContext) -> list[Finding]:
    """A delivery channel to an existing bucket (the baseline's log bucket, or any other, said
    in evidence) whose last history and snapshot deliveries did not fail."""
    channels = delivery_channels(ctx)
    if not channels:
        wanted = expected_bucket(ctx.baseline, ctx.account_id)
        return [ctx.failed(ctx.region, f"no AWS Config delivery channel in this region: recorded items go "
                                       f"nowhere durable; put one delivering to {wanted}",
                           channel=None, baseline_bucket=wanted)]
    statuses = _channel_statuses(ctx)
    return [_channel_finding(ctx, ch, statuses.get(ch["name"], {})) for ch in channels]


# =============================================================================================
# Fixes: config.recorder and config.delivery
#
# They converge on what the config module declares (provisioner/resources.py): recorder and
# channel "default" (an existing recorder or channel under another name is updated in place: a
# region holds one of each), every supported resource type, global types in the home region only,
# CONTINUOUS, the account root module's recorder role, delivery to the log bucket under
# config.s3_key_prefix with the baseline's key. From nothing, the action first creates the
# cloudtrail key and the log bucket, as the cloudtrail module declares them, then the role.
# Each action re-reads the region when it runs, so the two controls' actions in one region
# (delivery, then recorder) do not repeat each other's calls.

RECORDER_NAME = resources.CONFIG_RECORDER_NAME
CHANNEL_NAME = resources.CONFIG_CHANNEL_NAME

_CONFIG_STEP_TEXT = {
    "iam:CreateRole": "create the recorder role {role_name} (the account root module's)",
    "config:PutConfigurationRecorder": "put recorder {recorder}: all supported resource types, global resource "
                                       "types {globals}, CONTINUOUS, role {role}",
    "config:PutDeliveryChannel": "put delivery channel {channel} to s3://{bucket}/{prefix}/ every {frequency}{kms}",
    "config:StartConfigurationRecorder": "start recorder {recorder}",
}


def baseline_role_name(baseline: Baseline) -> str:
    return f"{baseline.name_prefix}-config-recorder"  # the account root module's aws_iam_role.config


def _recorder_role(ctx: CheckContext, create: bool, notes: list[str] | None = None) -> tuple[str | None, str]:
    """(role ARN, what it is): the baseline's role (its grants are scoped to the log bucket prefix
    and key), created with its policies when `create` (the ARN is None when it is missing and not
    created). Created after the cloudtrail key its policy names."""
    iam, name = ctx.aws.client("iam"), baseline_role_name(ctx.baseline)
    arn = converge.role_arn(iam, name)
    if arn:
        if create:
            # Brought to the module's role (trust, tags, policies) with the key its policy names;
            # without that key (not created yet) the role is left as it is rather than create one.
            key_arn = baseline_kms_key_arn(ctx.aws, ctx.baseline)
            if key_arn is not None:
                converge.ensure_role(iam, resources.config_role(ctx.baseline, ctx.account_id, key_arn), notes)
        return arn, f"the baseline's {name}"
    if not create:
        return None, f"the baseline's {name} (created)"
    return converge.ensure_role(iam, resources.config_role(ctx.baseline, ctx.account_id, _ensure_key(ctx, notes))), \
        f"the baseline's {name} (created)"


def _recorder_out_of_shape(ctx: CheckContext, recorder: dict, status: dict) -> bool:
    """Does the recorder differ from the module's, or fail? (A failing recorder is put again:
    the new role may be what it lacked.)"""
    group = recorder.get("recordingGroup") or {}
    mode = recorder.get("recordingMode") or {}
    home = ctx.region == ctx.baseline.home_region
    return (not group.get("allSupported") or bool(group.get("includeGlobalResourceTypes")) != home
            or mode.get("recordingFrequency", "CONTINUOUS") != "CONTINUOUS"
            or bool(mode.get("recordingModeOverrides")) or _failed_status(status.get("lastStatus")))


def _desired_recorder(ctx: CheckContext, name: str, role_arn: str) -> dict:
    desired = resources.config_recorder(ctx.baseline, converge.site_of(ctx))
    return {"name": name, "roleARN": role_arn,
            "recordingGroup": {"allSupported": desired.all_supported,
                               "includeGlobalResourceTypes": desired.include_global_resource_types},
            "recordingMode": {"recordingFrequency": desired.recording_frequency}}


def _desired_channel(ctx: CheckContext, name: str, current: dict | None, kms_arn: str | None) -> dict:
    desired = resources.config_channel(ctx.baseline, ctx.account_id)
    channel = {"name": name, "s3BucketName": desired.bucket, "s3KeyPrefix": desired.prefix,
               "configSnapshotDeliveryProperties": {"deliveryFrequency": desired.frequency}}
    current = current or {}
    # Without the baseline's key, keep the channel's own; keep a notification topic someone set up.
    kms_arn = kms_arn or current.get("s3KmsKeyArn")
    if kms_arn:
        channel["s3KmsKeyArn"] = kms_arn
    if current.get("snsTopicARN"):
        channel["snsTopicARN"] = current["snsTopicARN"]
    return channel


def _channel_differs(current: dict, desired: dict) -> bool:
    frequency = (current.get("configSnapshotDeliveryProperties") or {}).get("deliveryFrequency")
    return (frequency != desired["configSnapshotDeliveryProperties"]["deliveryFrequency"]
            or any(current.get(k) != desired.get(k) for k in ("s3BucketName", "s3KeyPrefix", "s3KmsKeyArn")))


def _live(ctx: CheckContext) -> tuple[dict | None, dict, list[dict]]:
    """(the recorder, its status, the channels) as they are now, uncached: an earlier action of
    this run may have changed them."""
    client = ctx.client("config")
    found = [r for r in client.describe_configuration_recorders()["ConfigurationRecorders"]
             if not r.get("servicePrincipal")]
    recorder = min(found, key=lambda r: r["name"], default=None)
    statuses = {s["name"]: s for s in client.describe_configuration_recorder_status()["ConfigurationRecordersStatus"]}
    status = statuses.get(recorder["name"], {}) if recorder else {}
    return recorder, status, client.describe_delivery_channels()["DeliveryChannels"]


def _ensure_key(ctx: CheckContext, notes: list[str] | None = None) -> str:
    """The cloudtrail module's key (the deliveries are encrypted with it), created when missing;
    what ensure_key did goes to `notes`."""
    return converge.ensure_key(ctx.client("kms", ctx.baseline.home_region),
                               resources.trail_key(ctx.baseline, ctx.account_id), notes)


def _ensure_bucket(ctx: CheckContext, notes: list[str]) -> None:
    """The log bucket, created as the cloudtrail module declares it when missing."""
    home = ctx.baseline.home_region
    bucket = resources.log_bucket(ctx.baseline, ctx.account_id)
    ctx.cache.pop(f"s3:head_bucket:{bucket.name}", None)  # the planner's answer may be stale
    converge.ensure_bucket(ctx.client("s3", home), ctx.client("kms", home), bucket, home, notes)


def _recorder_steps(ctx: CheckContext, recorder: dict | None, status: dict, channels: list[dict]) -> list[str]:
    """The recorder's action: put it (missing or out of shape), put a channel when the region has
    none (a recorder cannot start without one), start it."""
    steps = []
    if recorder is None or _recorder_out_of_shape(ctx, recorder, status):
        steps.append("config:PutConfigurationRecorder")
    if not channels:
        steps.append("config:PutDeliveryChannel")
    if recorder is None or not status.get("recording"):
        steps.append("config:StartConfigurationRecorder")
    return steps


def _delivery_steps(ctx: CheckContext, recorder: dict | None, channel: dict | None, kms_arn: str | None) -> list[str]:
    """The delivery action: a recorder when the region has none (AWS refuses a channel without
    one; a recorder created here is started too, not left off), then the channel when it is
    missing or differs from the module's. The recorder's own settings are the other action's."""
    steps = ["config:PutConfigurationRecorder"] if recorder is None else []
    if channel is None or _channel_differs(channel, _desired_channel(ctx, channel["name"], channel, kms_arn)):
        steps.append("config:PutDeliveryChannel")
    if recorder is None:
        steps.append("config:StartConfigurationRecorder")
    return steps


def _region_steps(ctx: CheckContext, recorder: dict | None, status: dict, channels: list[dict],
                  kms_arn: str | None, fix_recorder: bool) -> list[str]:
    if fix_recorder:
        return _recorder_steps(ctx, recorder, status, channels)
    return _delivery_steps(ctx, recorder, channels[0] if channels else None, kms_arn)


def _converge_region(ctx: CheckContext, kms_arn: str | None, fix_recorder: bool) -> dict:
    recorder, status, channels = _live(ctx)
    channel = channels[0] if channels else None
    steps = _region_steps(ctx, recorder, status, channels, kms_arn, fix_recorder)
    if not steps:
        return {"message": "nothing left to do (an earlier action did it)", "calls": []}
    # In dependency order, before the recorder (nothing left half-configured): the key, which
    # the bucket, the role's policy and the channel name; the bucket; then the role (its policy
    # names the key: a role that exists needs no key).
    # What ensure_key did (a losing race's key is scheduled for deletion, with its cancel command)
    # and what an existing role needed to match the module.
    notes: list[str] = []
    if "config:PutDeliveryChannel" in steps:
        kms_arn = _ensure_key(ctx, notes)
    if "config:PutDeliveryChannel" in steps:
        _ensure_bucket(ctx, notes)
    client = ctx.client("config")
    name = recorder["name"] if recorder else RECORDER_NAME
    done = []
    if "config:PutConfigurationRecorder" in steps:
        role_arn, role = _recorder_role(ctx, create=True, notes=notes)
        client.put_configuration_recorder(ConfigurationRecorder=_desired_recorder(ctx, name, role_arn))
        done.append(f"put recorder {name} (role {role})")
    if "config:PutDeliveryChannel" in steps:
        desired = _desired_channel(ctx, channel["name"] if channel else CHANNEL_NAME, channel, kms_arn)
        client.put_delivery_channel(DeliveryChannel=desired)
        done.append(f"put delivery channel {desired['name']} to {desired['s3BucketName']}")
    if "config:StartConfigurationRecorder" in steps:
        client.start_configuration_recorder(ConfigurationRecorderName=name)
        done.append(f"started recorder {name}")
    if notes:
        done.extend(notes)
    return {"message": "; ".join(done), "calls": steps}


def _region_action(ctx: CheckContext, resource: str, fix_recorder: bool) -> Action | None:
    found = recorders(ctx)
    recorder = found[0] if found else None
    status = recorder_statuses(ctx).get(recorder["name"], {}) if recorder else {}
    channels = delivery_channels(ctx)
    channel = channels[0] if channels else None
    kms_arn = baseline_kms_key_arn(ctx.aws, ctx.baseline)
    steps = _region_steps(ctx, recorder, status, channels, kms_arn, fix_recorder)
    if not steps:
        return None  # e.g. a channel already as desired whose bucket policy fails: Terraform's
    calls, role, role_arn = list(steps), "", None
    if "config:PutConfigurationRecorder" in steps:
        role_arn, role = _recorder_role(ctx, create=False)
        if role_arn is None:
            calls.insert(0, "iam:CreateRole")
    bucket = expected_bucket(ctx.baseline, ctx.account_id)
    home = ctx.region == ctx.baseline.home_region
    text = {
        "recorder": recorder["name"] if recorder else RECORDER_NAME,
        "globals": "included (home region)" if home else "left to the home region",
        "role": role, "role_name": baseline_role_name(ctx.baseline), "channel": channel["name"] if channel else CHANNEL_NAME, "bucket": bucket,
        "prefix": ctx.baseline.config.s3_key_prefix, "frequency": ctx.baseline.config.delivery_frequency,
        "kms": f", encrypted with {kms_arn}" if kms_arn else "",
    }
    description = f"AWS Config in {ctx.region}: " + "; ".join(_CONFIG_STEP_TEXT[c].format(**text) for c in calls)
    if "config:PutDeliveryChannel" in steps and not _bucket_exists(ctx, bucket)[0]:
        description += (f" (the log bucket {bucket} does not exist yet: created first, with its key "
                        f"{resources.trail_key_alias(ctx.baseline)}, as the cloudtrail module declares them)")
    if kms_arn is None and {"config:PutDeliveryChannel", "iam:CreateRole"} & set(calls):
        calls = converge.KEY_CALLS + calls  # the cloudtrail module's key, adopted or created first
    if "config:PutConfigurationRecorder" in steps and role_arn is not None and kms_arn is not None:
        # The existing role is brought to the module's (converge.ensure_role) with the key its policy names.
        calls = [c for c in converge.ROLE_CALLS if not c.startswith("iam:CreateRole")] + calls
    return Action(ctx.control_id, ctx.region, resource, description, calls,
                  lambda: _converge_region(ctx, kms_arn, fix_recorder))


@fix("config.recorder")
def fix_recorder(ctx: CheckContext, failed: list[Finding]) -> list[Action]:
    """One action per region: put the recorder (in place under its own name when one exists),
    a delivery channel if the region has none, and start it."""
    found = recorders(ctx)
    resource = found[0]["name"] if found else ctx.region
    action = _region_action(ctx, resource, fix_recorder=True)
    return [action] if action else []


@fix("config.delivery")
def fix_delivery(ctx: CheckContext, failed: list[Finding]) -> list[Action]:
    """One action per region: put the delivery channel (in place under its own name when one
    exists) to the log bucket, after creating and starting a recorder if the region has none."""
    channels = delivery_channels(ctx)
    resource = channels[0]["name"] if channels else ctx.region
    action = _region_action(ctx, resource, fix_recorder=False)
    return [action] if action else []
