"""config.*: AWS Config records every resource (Elastic IPs included) in every region and
delivers what it records to the log bucket.

Each region holds at most one customer managed recorder and one delivery channel; the three
describe calls return everything in one response (no pagination) and are cached so both
controls of a region share them. Service-linked recorders (servicePrincipal set) record only
what one AWS service needs and are not the account's recorder: they are left out.
"""

from __future__ import annotations

import botocore.exceptions

from provisioner.aws import error_code
from provisioner.baseline import Baseline
from provisioner.controls import CheckContext, control
from provisioner.findings import Finding

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


def _skip_if_disabled(ctx: CheckContext) -> list[Finding] | None:
    if ctx.baseline.config.enabled:
        return None
    return [ctx.skipped(ctx.region, "config.enabled = false in the baseline: AWS Config is not part of "
                        "the desired state", config_enabled=False)]


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
         scope="regional", maps_to="CIS 3.3, SecurityHub Config.1")
def recorder(ctx: CheckContext) -> list[Finding]:
    """A recorder that is recording all supported resource types continuously, global types in
    the home region (elsewhere optional: only a duplicate), last status not Failure, and a
    delivery channel beside it."""
    if skipped := _skip_if_disabled(ctx):
        return skipped
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
         scope="regional", maps_to="SecurityHub Config.1")
def delivery(ctx: CheckContext) -> list[Finding]:
    """A delivery channel to an existing bucket (the baseline's log bucket, or any other, said
    in evidence) whose last history and snapshot deliveries did not fail."""
    if skipped := _skip_if_disabled(ctx):
        return skipped
    channels = delivery_channels(ctx)
    if not channels:
        wanted = expected_bucket(ctx.baseline, ctx.account_id)
        return [ctx.failed(ctx.region, f"no AWS Config delivery channel in this region: recorded items go "
                                       f"nowhere durable; put one delivering to {wanted}",
                           channel=None, baseline_bucket=wanted)]
    statuses = _channel_statuses(ctx)
    return [_channel_finding(ctx, ch, statuses.get(ch["name"], {})) for ch in channels]
