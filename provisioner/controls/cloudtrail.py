"""cloudtrail.*: the account's audit record of AllocateAddress and everything around it.

All five controls are account-scope: they run once, in the home region, over the trails
`describe_trails(includeShadowTrails=True)` shows there (the home region's own trails, every
multi-region trail whatever its home, and organization trails). Per-trail lookups
(`get_trail_status`, `get_event_selectors`) go to the trail's own home region by ARN, as
CloudTrail requires for shadow trails, and are cached so the five checks share them.

Any trail that satisfies a control passes it, like an auditor would; the baseline's trail name
only decides which compliant trail is named first.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import botocore.exceptions

from provisioner import converge, resources
from provisioner.aws import AwsSession, error_code, parse_arn, partition_for
from provisioner.controls import CheckContext, Mappings, control
from provisioner.key_policy import Caller, allows, outside_principals
from provisioner.findings import Finding
from provisioner.remediate import Action, fix

# The only management event sources CloudTrail lets a trail exclude; excluding them still
# records every other management event (AllocateAddress included).
EXCLUDABLE_SOURCES = frozenset({"kms.amazonaws.com", "rdsdata.amazonaws.com"})
# CloudTrail.5 / Prowler: a CloudWatch Logs copy older than this means the alarms are blind.
CLOUDWATCH_DELIVERY_MAX_AGE = timedelta(hours=24)
PAB_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
_FIELD_OPERATORS = ("Equals", "NotEquals", "StartsWith", "NotStartsWith", "EndsWith", "NotEndsWith")


# ---------------------------------------------------------------------------------------------
# Shared lookups (cached in the context: the five checks of one run share them)

def trails(ctx: CheckContext) -> list[dict]:
    """Every trail visible from the home region, shadow and organization trails included.
    describe_trails has no pagination: it returns the whole list in one response."""
    def fetch() -> list[dict]:
        listed = ctx.client("cloudtrail").describe_trails(includeShadowTrails=True)["trailList"]
        return sorted(listed, key=lambda t: t["TrailARN"])

    return ctx.cached("cloudtrail:trails", fetch)


def home_region(trail: dict) -> str:
    return trail.get("HomeRegion") or parse_arn(trail["TrailARN"])["region"]


def _partition(arn: str) -> str:
    return parse_arn(arn)["partition"]


def trail_status(ctx: CheckContext, trail: dict) -> dict:
    arn = trail["TrailARN"]

    def fetch() -> dict:
        # By ARN in the trail's home region: a shadow trail's status is only available there.
        resp = ctx.client("cloudtrail", home_region(trail)).get_trail_status(Name=arn)
        return {k: v for k, v in resp.items() if k != "ResponseMetadata"}

    return ctx.cached(f"cloudtrail:status:{arn}", fetch)


def event_selectors(ctx: CheckContext, trail: dict) -> dict:
    arn = trail["TrailARN"]

    def fetch() -> dict:
        resp = ctx.client("cloudtrail", home_region(trail)).get_event_selectors(TrailName=arn)
        return {"EventSelectors": resp.get("EventSelectors") or [],
                "AdvancedEventSelectors": resp.get("AdvancedEventSelectors") or []}

    return ctx.cached(f"cloudtrail:selectors:{arn}", fetch)


def relevant_trails(ctx: CheckContext) -> list[dict]:
    """The trails that make the account's audit record: the multi-region ones, or every trail
    when none is multi-region (then each single-region trail is all there is)."""
    found = trails(ctx)
    return [t for t in found if t.get("IsMultiRegionTrail")] or found


def _no_trail(ctx: CheckContext) -> list[Finding]:
    return [ctx.failed(ctx.account_id,
                       f"no CloudTrail trail in the account (looked in {ctx.region}, shadow trails "
                       f"included); create the baseline's multi-region trail {ctx.baseline.trail_name}",
                       trails=[])]


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _named(trail: dict) -> str:
    return f"{trail['Name']} ({trail['TrailARN']})"


def _other_name_note(ctx: CheckContext, trail: dict) -> str:
    wanted = ctx.baseline.trail_name
    return "" if trail["Name"] == wanted else f" (not the baseline's trail {wanted}, but it satisfies the control)"


# ---------------------------------------------------------------------------------------------
# Management events: which of read / write a trail's selectors capture

def _field_matches(selector: dict, value: str) -> bool:
    """Does an advanced field selector let `value` through? (Every operator present must hold.)"""
    checks = {
        "Equals": lambda vs: value in vs,
        "NotEquals": lambda vs: value not in vs,
        "StartsWith": lambda vs: any(value.startswith(v) for v in vs),
        "NotStartsWith": lambda vs: not any(value.startswith(v) for v in vs),
        "EndsWith": lambda vs: any(value.endswith(v) for v in vs),
        "NotEndsWith": lambda vs: not any(value.endswith(v) for v in vs),
    }
    return all(test(selector[op]) for op, test in checks.items() if selector.get(op))


def _advanced_coverage(selector: dict) -> tuple[set[str], list[str], str | None]:
    """(kinds captured, excluded event sources, why the selector does not count) for one
    advanced selector. A selector that is not about management events captures nothing."""
    fields = {fs["Field"]: fs for fs in selector.get("FieldSelectors", [])}
    category = fields.get("eventCategory")
    if not category or not _field_matches(category, "Management"):
        return set(), [], None
    name = selector.get("Name") or "unnamed"
    unknown = sorted(set(fields) - {"eventCategory", "readOnly", "eventSource"})
    if unknown:
        return set(), [], f"management selector {name!r} also filters on {', '.join(unknown)}"
    exclusions: list[str] = []
    source = fields.get("eventSource")
    if source:
        narrowing = [op for op in _FIELD_OPERATORS if op != "NotEquals" and source.get(op)]
        excluded = list(source.get("NotEquals") or [])
        if narrowing or not set(excluded) <= EXCLUDABLE_SOURCES:
            return set(), [], f"management selector {name!r} keeps only some event sources"
        exclusions = excluded
    read_only = fields.get("readOnly")
    kinds = {kind for kind, value in (("read", "true"), ("write", "false"))
             if read_only is None or _field_matches(read_only, value)}
    return kinds, exclusions, None


def _basic_coverage(selector: dict) -> tuple[set[str], list[str]]:
    if not selector.get("IncludeManagementEvents", False):
        return set(), []
    kinds = {"All": {"read", "write"}, "ReadOnly": {"read"}, "WriteOnly": {"write"}}
    return set(kinds.get(selector.get("ReadWriteType", "All"), set())), \
        list(selector.get("ExcludeManagementEventSources") or [])


def management_coverage(selectors: dict) -> dict:
    """Read and write coverage over all of a trail's selectors: a ReadOnly selector plus a
    WriteOnly one capture everything, as AWS evaluates selectors as a union."""
    kinds: set[str] = set()
    exclusions: set[str] = set()
    not_counted: list[str] = []
    for sel in selectors.get("EventSelectors", []):
        got, excluded = _basic_coverage(sel)
        kinds |= got
        exclusions |= set(excluded) if got else set()
    for sel in selectors.get("AdvancedEventSelectors", []):
        got, excluded, why = _advanced_coverage(sel)
        kinds |= got
        exclusions |= set(excluded)
        if why:
            not_counted.append(why)
    return {"read": "read" in kinds, "write": "write" in kinds,
            "excluded_sources": sorted(exclusions), "selectors_not_counted": not_counted,
            "selector_type": "advanced" if selectors.get("AdvancedEventSelectors") else "basic"}


# ---------------------------------------------------------------------------------------------
# cloudtrail.multi_region

def _trail_summary(ctx: CheckContext, trail: dict) -> dict:
    status = trail_status(ctx, trail)
    coverage = management_coverage(event_selectors(ctx, trail))
    return {
        "trail": trail["TrailARN"],
        "home_region": home_region(trail),
        "multi_region": bool(trail.get("IsMultiRegionTrail")),
        "organization_trail": bool(trail.get("IsOrganizationTrail")),
        "is_logging": bool(status.get("IsLogging")),
        "include_global_service_events": bool(trail.get("IncludeGlobalServiceEvents")),
        "management_events": coverage,
        "latest_delivery_error": status.get("LatestDeliveryError") or None,
        "latest_delivery_time": _iso(status.get("LatestDeliveryTime")),
    }


def _multi_region_gaps(summary: dict) -> list[str]:
    gaps = []
    if not summary["multi_region"]:
        gaps.append("not multi-region")
    if not summary["is_logging"]:
        gaps.append("not logging")
    if not summary["include_global_service_events"]:
        gaps.append("global service events (IAM, STS) not included")
    coverage = summary["management_events"]
    missing = [kind for kind in ("read", "write") if not coverage[kind]]
    if len(missing) == 2:
        gaps.append("captures no management events")
    elif missing:
        gaps.append(f"does not capture {missing[0]} management events")
    gaps.extend(coverage["selectors_not_counted"] if missing else [])
    if summary["latest_delivery_error"]:
        gaps.append(f"S3 delivery failing ({summary['latest_delivery_error']})")
    return gaps


@control("cloudtrail.multi_region",
         title="A multi-region trail is logging read and write management events",
         scope="account", severity="high",
         rationale="without a logging multi-region trail nothing records who allocated, associated or "
         "released an address, in any region: every detection of this tool goes blind",
         mappings=Mappings(cis_v3=("3.1",), cis_v4=("3.1",), securityhub=("CloudTrail.1",)),
         fix="a multi-region trail that is logging, with global service events and read+write management "
         "events (`harden remediate --controls cloudtrail.multi_region`, or the cloudtrail module)",
         terraform="cloudtrail/aws_cloudtrail.this")
def multi_region(ctx: CheckContext) -> list[Finding]:
    """At least one trail that is multi-region, logging, includes global service events,
    captures read and write management events and delivers to S3 without error."""
    found = trails(ctx)
    if not found:
        return _no_trail(ctx)
    summaries = [_trail_summary(ctx, t) for t in found]
    for summary in summaries:
        summary["missing"] = _multi_region_gaps(summary)
    compliant = [t for t, s in zip(found, summaries) if not s["missing"]]
    if compliant:
        # The baseline's own trail is named when it complies; otherwise the first that does.
        best = next((t for t in compliant if t["Name"] == ctx.baseline.trail_name), compliant[0])
        return [ctx.passed(best["TrailARN"],
                           f"trail {best['Name']} is multi-region, logging, includes global service "
                           f"events and captures read and write management events{_other_name_note(ctx, best)}",
                           trails=summaries, baseline_trail_name=ctx.baseline.trail_name)]
    why = "; ".join(f"{t['Name']}: {', '.join(s['missing'])}" for t, s in zip(found, summaries))
    return [ctx.failed(ctx.account_id,
                       f"no trail is multi-region, logging, with global service events and read+write "
                       f"management events, delivering without error ({why})",
                       trails=summaries, baseline_trail_name=ctx.baseline.trail_name)]


# ---------------------------------------------------------------------------------------------
# cloudtrail.log_validation

@control("cloudtrail.log_validation", title="Trails validate their log files (digest files)",
         scope="account", severity="medium",
         rationale="without digest files a deleted or edited log cannot be proven, so an intruder can "
         "erase the AllocateAddress calls that would show the abuse",
         mappings=Mappings(cis_v3=("3.2",), cis_v4=("3.2",), securityhub=("CloudTrail.4",)),
         fix="turn on log file validation on the trail (`harden remediate --controls cloudtrail.log_validation`)",
         terraform="cloudtrail/aws_cloudtrail.this")
def log_validation(ctx: CheckContext) -> list[Finding]:
    """Every multi-region trail (or every trail, when none is multi-region) has log file
    validation on, so a deleted or altered log file can be proven."""
    chosen = relevant_trails(ctx)
    if not chosen:
        return _no_trail(ctx)
    findings = []
    for trail in chosen:
        enabled = bool(trail.get("LogFileValidationEnabled"))
        evidence = {"log_file_validation_enabled": enabled, "multi_region": bool(trail.get("IsMultiRegionTrail"))}
        if enabled:
            findings.append(ctx.passed(trail["TrailARN"], f"trail {trail['Name']} validates its log files",
                                       **evidence))
        else:
            findings.append(ctx.failed(trail["TrailARN"],
                                       f"trail {trail['Name']} has log file validation off: a deleted or altered "
                                       f"log file cannot be detected; enable it (update-trail "
                                       f"--enable-log-file-validation)", **evidence))
    return findings


# ---------------------------------------------------------------------------------------------
# cloudtrail.kms

def _key_facts(ctx: CheckContext, key_id: str, region: str) -> dict:
    """describe_key, and the rotation status of a usable customer key; once per key."""
    def fetch() -> dict:
        kms = ctx.client("kms", region)
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        facts = {"key_arn": meta["Arn"], "key_manager": meta.get("KeyManager"),
                 "key_state": meta.get("KeyState"), "rotation_enabled": None, "rotation_period_days": None}
        # Rotation of an AWS managed key is not ours to set, and a key pending deletion or
        # disabled fails anyway: asking would only add a call (or a KMSInvalidStateException).
        if facts["key_manager"] == "CUSTOMER" and facts["key_state"] == "Enabled":
            rotation = kms.get_key_rotation_status(KeyId=meta["Arn"])
            facts["rotation_enabled"] = bool(rotation.get("KeyRotationEnabled"))
            facts["rotation_period_days"] = rotation.get("RotationPeriodInDays")
            # "default" is the only key policy name KMS has.
            facts["policy"] = json.loads(kms.get_key_policy(KeyId=meta["Arn"], PolicyName="default")["Policy"])
        return facts

    return ctx.cached(f"kms:key:{key_id}", fetch)


def _key_region(key_id: str, trail: dict) -> str:
    # CloudTrail returns the key as a full ARN; a bare id would live in the trail's region.
    return parse_arn(key_id)["region"] if key_id.startswith("arn:") else home_region(trail)


def _key_gaps(facts: dict) -> list[str]:
    gaps = []
    if facts["key_manager"] != "CUSTOMER":
        gaps.append(f"the key is {facts['key_manager']}-managed, not a customer managed key "
                    "(its policy and rotation are not yours to control)")
    if facts["key_state"] != "Enabled":
        gaps.append(f"the key is {facts['key_state']} (CloudTrail cannot encrypt with it)")
    if facts["key_manager"] == "CUSTOMER" and facts["key_state"] == "Enabled" and not facts["rotation_enabled"]:
        gaps.append("automatic key rotation is off (enable-key-rotation)")
    return gaps


def _key_policy_gaps(policy: dict | None, trail: dict) -> tuple[list[str], dict]:
    """What the key policy of a trail's key must still allow, and whom it must not let in:
    CloudTrail encrypting this trail's logs (the call it makes, with the keys it sends:
    https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html),
    and no principal of another account (the key decrypts the logs)."""
    if policy is None:
        return [], {}
    trail_arn = trail["TrailARN"]
    account = trail_arn.split(":")[4]
    cloudtrail = Caller("cloudtrail.amazonaws.com", service=True, context={
        "aws:SourceArn": trail_arn, "aws:SourceAccount": account,
        "kms:EncryptionContext:aws:cloudtrail:arn": trail_arn})
    can_encrypt = allows(policy, cloudtrail, "kms:GenerateDataKey")
    outsiders = outside_principals(policy, account)
    gaps = []
    if not can_encrypt:
        gaps.append(f"the key policy no longer lets CloudTrail encrypt the logs of {trail_arn} "
                    "(kms:GenerateDataKey* for cloudtrail.amazonaws.com): log delivery stops")
    if outsiders:
        gaps.append(f"the key policy lets principals outside account {account} in: {', '.join(outsiders)}")
    return gaps, {"cloudtrail_can_encrypt": can_encrypt, "key_policy_outside_principals": outsiders}


@control("cloudtrail.kms", title="Trails encrypt with a customer managed KMS key that rotates",
         scope="account", severity="medium",
         rationale="SSE-S3 logs are readable by anyone who can read the bucket; a customer key adds a "
         "second, auditable permission and rotation limits a leaked key's reach",
         mappings=Mappings(cis_v3=("3.5", "3.6"), cis_v4=("3.5", "3.6"), securityhub=("CloudTrail.2", "KMS.4")),
         fix="encrypt the trail with a customer managed KMS key that rotates (the cloudtrail module's "
         "aws_kms_key; apply with `harden apply`)",
         terraform="cloudtrail/aws_kms_key.this")
def kms(ctx: CheckContext) -> list[Finding]:
    """Each relevant trail has SSE-KMS with a customer managed, enabled key with rotation on, whose
    policy still lets CloudTrail encrypt this trail's logs and lets no other account in."""
    chosen = relevant_trails(ctx)
    if not chosen:
        return _no_trail(ctx)
    findings = []
    for trail in chosen:
        key_id = trail.get("KmsKeyId")
        if not key_id:
            findings.append(ctx.failed(trail["TrailARN"],
                                       f"trail {trail['Name']} is not encrypted with KMS (SSE-S3 only); "
                                       "set a customer managed key with rotation on (update-trail --kms-key-id)",
                                       kms_key_id=None))
            continue
        facts = dict(_key_facts(ctx, key_id, _key_region(key_id, trail)))
        policy_gaps, policy_facts = _key_policy_gaps(facts.pop("policy", None), trail)
        facts.update(policy_facts)
        gaps = _key_gaps(facts) + policy_gaps
        if gaps:
            findings.append(ctx.failed(trail["TrailARN"], f"trail {trail['Name']}: {'; '.join(gaps)}",
                                       kms_key_id=key_id, **facts))
        else:
            findings.append(ctx.passed(trail["TrailARN"],
                                       f"trail {trail['Name']} is encrypted with customer managed key "
                                       f"{facts['key_arn']}, enabled, rotation on", kms_key_id=key_id, **facts))
    return findings


# ---------------------------------------------------------------------------------------------
# cloudtrail.cloudwatch_logs

def _cloudwatch_gaps(ctx: CheckContext, trail: dict, status: dict) -> list[str]:
    gaps = []
    if not trail.get("CloudWatchLogsLogGroupArn"):
        gaps.append("no CloudWatch Logs log group")
    if not trail.get("CloudWatchLogsRoleArn"):
        gaps.append("no role for CloudTrail to deliver to CloudWatch Logs")
    if status.get("LatestCloudWatchLogsDeliveryError"):
        gaps.append(f"CloudWatch Logs delivery failing ({status['LatestCloudWatchLogsDeliveryError']})")
    delivered = status.get("LatestCloudWatchLogsDeliveryTime")
    # A trail that has not delivered yet (just created) gives no time; one that stopped
    # delivering gives an old one, and the metric filters that raise the alarms read nothing.
    if isinstance(delivered, datetime) and ctx.now - delivered > CLOUDWATCH_DELIVERY_MAX_AGE:
        gaps.append(f"last CloudWatch Logs delivery {delivered.isoformat()} is older than 24 hours")
    return gaps


@control("cloudtrail.cloudwatch_logs", title="Trails deliver to CloudWatch Logs without error",
         scope="account", severity="medium",
         rationale="the Elastic IP metric filter and alarm read the trail's CloudWatch Logs group: "
         "without delivery, allocations are logged but nobody is told",
         mappings=Mappings(securityhub=("CloudTrail.5",)),
         fix="deliver the trail to a CloudWatch Logs group through a delivery role (the cloudtrail module; "
         "`harden apply`)",
         terraform="cloudtrail/aws_cloudwatch_log_group.this")
def cloudwatch_logs(ctx: CheckContext) -> list[Finding]:
    """Each relevant trail names a log group and a delivery role, and its last CloudWatch Logs
    delivery neither failed nor is more than 24 hours old."""
    chosen = relevant_trails(ctx)
    if not chosen:
        return _no_trail(ctx)
    findings = []
    for trail in chosen:
        status = trail_status(ctx, trail)
        evidence = {
            "log_group_arn": trail.get("CloudWatchLogsLogGroupArn") or None,
            "role_arn": trail.get("CloudWatchLogsRoleArn") or None,
            "latest_delivery_error": status.get("LatestCloudWatchLogsDeliveryError") or None,
            "latest_delivery_time": _iso(status.get("LatestCloudWatchLogsDeliveryTime")),
        }
        gaps = _cloudwatch_gaps(ctx, trail, status)
        if gaps:
            findings.append(ctx.failed(trail["TrailARN"],
                                       f"trail {trail['Name']}: {'; '.join(gaps)}; the AllocateAddress metric "
                                       "filter and alarm depend on this copy", **evidence))
        else:
            findings.append(ctx.passed(trail["TrailARN"],
                                       f"trail {trail['Name']} delivers to {evidence['log_group_arn']}", **evidence))
    return findings


# ---------------------------------------------------------------------------------------------
# cloudtrail.bucket

def _missing_as_none(call, missing: set[str], **kwargs) -> dict | None:
    """The response, or None when the error says the configuration does not exist."""
    try:
        return call(**kwargs)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) in missing:
            return None
        raise


def _strip_account_from_emulator_host(request, **_kwargs) -> None:
    """s3control puts the account id in the host name (<account>.s3-control.<region>...). Behind
    AWS_ENDPOINT_URL pointing at an IP or localhost (the emulator), that host cannot resolve:
    drop the label there. Never applies to a real AWS host name."""
    parts = urlsplit(request.url)
    host = parts.hostname or ""
    label, _, rest = host.partition(".")
    if not (len(label) == 12 and label.isdigit()):
        return
    try:
        ipaddress.ip_address(rest)
    except ValueError:
        if rest != "localhost":
            return
    request.url = urlunsplit(parts._replace(netloc=parts.netloc.replace(host, rest, 1)))


def s3control_client(aws: AwsSession, region: str):
    """The session's cached s3control client, made to work behind an emulator endpoint too
    (registering the host fix is idempotent: one unique id per client)."""
    client = aws.client("s3control", region)
    client.meta.events.register("before-sign.s3-control", _strip_account_from_emulator_host,
                                unique_id="harden-s3control-emulator-host")
    return client


def _account_public_access_block(ctx: CheckContext) -> dict | None:
    def fetch() -> dict | None:
        s3control = s3control_client(ctx.aws, ctx.region)
        resp = _missing_as_none(s3control.get_public_access_block, {"NoSuchPublicAccessBlockConfiguration"},
                                AccountId=ctx.account_id)
        return resp["PublicAccessBlockConfiguration"] if resp else None

    return ctx.cached("s3control:public_access_block", fetch)


def _bucket_config(ctx: CheckContext, bucket: str) -> dict | None:
    """The bucket's settings this control reads, or None when the bucket does not exist.
    S3 has no account-wide listing of these: four calls per bucket, once per bucket."""
    def fetch() -> dict | None:
        s3 = ctx.client("s3")
        versioning = _missing_as_none(s3.get_bucket_versioning, {"NoSuchBucket"}, Bucket=bucket)
        if versioning is None:
            return None
        pab = _missing_as_none(s3.get_public_access_block, {"NoSuchPublicAccessBlockConfiguration"}, Bucket=bucket)
        policy = _missing_as_none(s3.get_bucket_policy, {"NoSuchBucketPolicy"}, Bucket=bucket)
        ownership = _missing_as_none(s3.get_bucket_ownership_controls, {"OwnershipControlsNotFoundError"},
                                     Bucket=bucket)
        rules = (ownership or {}).get("OwnershipControls", {}).get("Rules", [])
        return {
            "versioning": versioning.get("Status"),
            "public_access_block": pab["PublicAccessBlockConfiguration"] if pab else None,
            "policy": json.loads(policy["Policy"]) if policy else None,
            "object_ownership": rules[0].get("ObjectOwnership") if rules else None,
        }

    return ctx.cached(f"s3:bucket:{bucket}", fetch)


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _statements(policy: dict | None) -> list[dict]:
    return [s for s in _as_list((policy or {}).get("Statement")) if isinstance(s, dict)]


def _condition_values(statement: dict, key: str, operators: tuple[str, ...] | None = None) -> list:
    """Values of a condition key (case-insensitive, as IAM compares keys) under the given
    operators (any operator when None)."""
    values: list = []
    for operator, block in (statement.get("Condition") or {}).items():
        if operators is not None and operator.lower() not in operators:
            continue
        for name, value in (block or {}).items():
            if name.lower() == key.lower():
                values.extend(_as_list(value))
    return values


def _matches_any(patterns: list, value: str) -> bool:
    return any(isinstance(p, str) and fnmatchcase(value.lower(), p.lower()) for p in patterns)


def _denies_insecure_transport(policy: dict | None, bucket_arn: str) -> bool:
    """A Deny for everyone on every S3 action over the bucket and its objects when
    aws:SecureTransport is false."""
    for st in _statements(policy):
        if st.get("Effect") != "Deny" or "NotPrincipal" in st or "NotAction" in st or "NotResource" in st:
            continue
        principal = st.get("Principal")
        everyone = principal == "*" or (isinstance(principal, dict) and "*" in _as_list(principal.get("AWS")))
        actions = [a.lower() for a in _as_list(st.get("Action")) if isinstance(a, str)]
        resources = _as_list(st.get("Resource"))
        covers = _matches_any(resources, bucket_arn) and _matches_any(resources, f"{bucket_arn}/any/object")
        insecure = [str(v).lower() for v in _condition_values(st, "aws:SecureTransport", ("bool", "boolifexists"))]
        if everyone and ("*" in actions or "s3:*" in actions) and covers and "false" in insecure:
            return True
    return False


def _cloudtrail_write_grants(policy: dict | None) -> list[dict]:
    grants = []
    for st in _statements(policy):
        principal = st.get("Principal")
        services = _as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if (st.get("Effect") == "Allow" and "cloudtrail.amazonaws.com" in services
                and _matches_any(_as_list(st.get("Action")), "s3:PutObject")):
            grants.append(st)
    return grants


# Operators that confine a grant to the listed values. A negated one (StringNotEquals
# aws:SourceArn) grants every trail but those, an ...IfExists one every request without the key:
# neither scopes anything. https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
_CONFINING = ("stringequals", "stringlike", "arnequals", "arnlike")


def _scoped_source_arns(values: list, accounts: set[str]) -> bool:
    """Every value names a trail of one of `accounts` (no wildcard, no other account)."""
    def own(value: Any) -> bool:
        parts = str(value).split(":")
        return len(parts) >= 6 and parts[4] in accounts
    return bool(values) and all(own(v) for v in values)


def _grant_problem(statement: dict, accounts: set[str]) -> str | None:
    """Why a CloudTrail write grant is usable by more than this account's trails; None when not."""
    operators = {str(op).lower() for op, block in (statement.get("Condition") or {}).items()
                 if any(str(k).lower() == "aws:sourcearn" for k in (block or {}))}
    label = statement.get("Sid") or "a CloudTrail PutObject grant"
    if not operators:
        return f"{label} has no aws:SourceArn condition"
    loose = sorted(op for op in operators if op not in _CONFINING)
    if loose:
        return f"{label} conditions aws:SourceArn with {', '.join(loose)}, which does not confine it to the trail"
    values = _condition_values(statement, "aws:SourceArn", _CONFINING)
    if not _scoped_source_arns(values, accounts):
        return f"{label} lets trails of another account (or any account) write: aws:SourceArn {values}"
    return None


def _source_arn_scoped(policy: dict | None, trail_arns: list[str]) -> tuple[bool, list, list[str]]:
    """CloudTrail's PutObject grants are all confined (a positive operator on aws:SourceArn) to
    trails of this account, and together they name every trail that writes here: no confused
    deputy, another account's trail cannot write into this bucket."""
    grants = _cloudtrail_write_grants(policy)
    accounts = {arn.split(":")[4] for arn in trail_arns}
    problems = [p for p in (_grant_problem(st, accounts) for st in grants) if p]
    all_values = [v for st in grants for v in _condition_values(st, "aws:SourceArn", _CONFINING)]
    ok = bool(grants) and not problems and all(_matches_any(all_values, arn) for arn in trail_arns)
    return ok, all_values, problems


def _public_access_blocked(ctx: CheckContext, bucket_block: dict | None) -> tuple[bool, dict | None, bool]:
    """(all four settings effective, the account-level block or None, whether it was read).
    S3 applies the stricter of bucket and account level per setting."""
    if bucket_block and all(bucket_block.get(f) for f in PAB_FLAGS):
        return True, None, False
    account_block = _account_public_access_block(ctx)
    effective = all((bucket_block or {}).get(f) or (account_block or {}).get(f) for f in PAB_FLAGS)
    return effective, account_block, True


def _bucket_finding(ctx: CheckContext, bucket: str, users: list[dict]) -> Finding:
    partition = _partition(users[0]["TrailARN"])
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    trail_arns = [t["TrailARN"] for t in users]
    names = ", ".join(t["Name"] for t in users)
    config = _bucket_config(ctx, bucket)
    if config is None:
        return ctx.failed(bucket_arn, f"bucket {bucket} of trail {names} does not exist: CloudTrail cannot "
                                      "deliver; create it (the baseline's cloudtrail module does)",
                          bucket_exists=False, trails=trail_arns)
    blocked, account_block, account_read = _public_access_blocked(ctx, config["public_access_block"])
    scoped, source_arns, grant_problems = _source_arn_scoped(config["policy"], trail_arns)
    checks = {
        "public_access_blocked": blocked,
        "tls_only_policy": _denies_insecure_transport(config["policy"], bucket_arn),
        "cloudtrail_write_scoped_by_source_arn": scoped,
        "versioning_enabled": config["versioning"] == "Enabled",
        "bucket_owner_enforced": config["object_ownership"] == "BucketOwnerEnforced",
    }
    evidence = {
        "checks": checks,
        "trails": trail_arns,
        "public_access_block_bucket": config["public_access_block"],
        "public_access_block_account": account_block if account_read else "not read (bucket level blocks all)",
        "has_policy": config["policy"] is not None,
        "cloudtrail_source_arns": source_arns,
        "cloudtrail_grant_problems": grant_problems,
        "versioning": config["versioning"],
        "object_ownership": config["object_ownership"],
    }
    fixes = {
        "public_access_blocked": "turn on all four S3 Block Public Access settings",
        "tls_only_policy": "add a Deny on s3:* for aws:SecureTransport = false over the bucket and its objects",
        "cloudtrail_write_scoped_by_source_arn": "condition every s3:PutObject grant to cloudtrail.amazonaws.com "
                                                 f"on aws:SourceArn of the trail ({', '.join(trail_arns)}) with "
                                                 "StringEquals or ArnEquals"
                                                 + (f" ({'; '.join(grant_problems)})" if grant_problems else ""),
        "versioning_enabled": f"enable versioning (now {config['versioning'] or 'never enabled'})",
        "bucket_owner_enforced": f"set object ownership to BucketOwnerEnforced (now {config['object_ownership']})",
    }
    failed = [fixes[name] for name, ok in checks.items() if not ok]
    if failed:
        return ctx.failed(bucket_arn, f"log bucket {bucket} of trail {names}: {'; '.join(failed)}", **evidence)
    return ctx.passed(bucket_arn, f"log bucket {bucket} of trail {names} blocks public access, requires TLS, "
                                  "lets only this trail write, is versioned and owner-enforced", **evidence)


@control("cloudtrail.bucket", title="The trail's S3 bucket is private, TLS-only, scoped, versioned",
         scope="account", severity="high",
         rationale="a public, unversioned or writable-by-anyone log bucket leaks or loses the only record "
         "of what happened; logs are what an investigation starts from",
         mappings=Mappings(cis_v3=("2.1.1", "2.1.4"), cis_v4=("2.1.1", "2.1.4"),
                           securityhub=("CloudTrail.6", "S3.5", "S3.8")),
         fix="block public access, deny non-TLS requests, scope CloudTrail's writes with aws:SourceArn, turn "
         "on versioning and BucketOwnerEnforced (the cloudtrail module's bucket resources; `harden apply`)",
         terraform="cloudtrail/aws_s3_bucket_policy.this")
def bucket(ctx: CheckContext) -> list[Finding]:
    """Each relevant trail's bucket (one finding per bucket): public access blocked (bucket or
    account level), a TLS-only Deny, CloudTrail's PutObject conditioned on aws:SourceArn,
    versioning Enabled and object ownership BucketOwnerEnforced."""
    chosen = relevant_trails(ctx)
    if not chosen:
        return _no_trail(ctx)
    by_bucket: dict[str, list[dict]] = {}
    for trail in chosen:
        by_bucket.setdefault(trail["S3BucketName"], []).append(trail)
    return [_bucket_finding(ctx, name, users) for name, users in sorted(by_bucket.items())]


# =============================================================================================
# Fixes: cloudtrail.multi_region and cloudtrail.log_validation
#
# Both converge on what the cloudtrail module declares for `aws_cloudtrail.this`: the baseline's
# trail name in the home region, multi-region, global service events, log file validation, every
# management event (read and write), logging. With no trail of the account's own, the baseline's
# trail is created with what the module creates around it (provisioner/resources.py), each only
# when missing and in dependency order: the key, the log bucket, the CloudWatch Logs group and
# the delivery role, then the trail. A later `harden apply` imports them.

TRAIL_SETTINGS = resources.TRAIL_SETTINGS
MANAGEMENT_SELECTOR = resources.MANAGEMENT_SELECTOR  # the module's event_selector
ADVANCED_MANAGEMENT_SELECTOR = {"Name": "Management events (harden)",
                                "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}
MAX_EVENT_SELECTORS = 5  # CloudTrail's limit on basic event selectors per trail

_STEP_TEXT = {
    "cloudtrail:UpdateTrail": "set IsMultiRegionTrail, IncludeGlobalServiceEvents and EnableLogFileValidation",
    "cloudtrail:PutEventSelectors": "log read and write management events (data-event selectors kept)",
    "cloudtrail:StartLogging": "start logging",
}


class MissingPrerequisite(RuntimeError):
    """Something Terraform must create first (the log bucket and its policy): the action fails
    with this one line instead of creating half a baseline."""


def baseline_trail_arn(ctx: CheckContext) -> str:
    home = ctx.baseline.home_region
    return f"arn:{partition_for(home)}:cloudtrail:{home}:{ctx.account_id}:trail/{ctx.baseline.trail_name}"


def baseline_kms_key_arn(aws: AwsSession, baseline) -> str | None:
    """The cloudtrail module's key (alias/<name_prefix>-cloudtrail, home region) when it exists
    and is enabled; the AWS Config delivery channel uses it too."""
    kms = aws.client("kms", baseline.home_region)
    try:
        meta = kms.describe_key(KeyId=resources.trail_key_alias(baseline))["KeyMetadata"]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "NotFoundException":
            return None
        raise
    return meta["Arn"] if meta.get("KeyState") == "Enabled" else None


def _own(ctx: CheckContext, trail: dict) -> bool:
    # An organization trail seen from a member account belongs to the management account: only
    # that account can change it.
    return trail["TrailARN"].split(":")[4] == ctx.account_id


def _trail_steps(trail: dict, status: dict, selectors: dict) -> list[str]:
    """The calls that bring an existing trail to the module's settings (none when it has them).
    A delivery error is not here: the bucket and its policy are Terraform's."""
    steps = []
    if not all(trail.get(k) for k in ("IsMultiRegionTrail", "IncludeGlobalServiceEvents", "LogFileValidationEnabled")):
        steps.append("cloudtrail:UpdateTrail")
    coverage = management_coverage(selectors)
    if not (coverage["read"] and coverage["write"]):
        steps.append("cloudtrail:PutEventSelectors")
    if not status.get("IsLogging"):
        steps.append("cloudtrail:StartLogging")
    return steps


def _is_management_selector(selector: dict) -> bool:
    fields = {fs["Field"]: fs for fs in selector.get("FieldSelectors", [])}
    return "eventCategory" in fields and _field_matches(fields["eventCategory"], "Management")


def selectors_with_management(current: dict) -> dict:
    """put_event_selectors arguments that capture every read and write management event and keep
    the trail's data-event selectors (the call replaces the whole set, so nothing is dropped
    that is not about management events)."""
    advanced = current.get("AdvancedEventSelectors") or []
    if advanced:
        # A narrowed management selector (filtered by source or readOnly) is replaced, not added
        # to: the new one is a superset.
        kept = [s for s in advanced if not _is_management_selector(s)]
        return {"AdvancedEventSelectors": kept + [dict(ADVANCED_MANAGEMENT_SELECTOR)]}
    basic = [dict(s) for s in current.get("EventSelectors") or []]
    managing = [s for s in basic if s.get("IncludeManagementEvents")]
    if managing:
        managing[0]["ReadWriteType"] = "All"
    elif len(basic) < MAX_EVENT_SELECTORS:
        basic.append(dict(MANAGEMENT_SELECTOR))
    else:
        basic[0].update(MANAGEMENT_SELECTOR)
    return {"EventSelectors": basic}


def _live_selectors(client, name: str) -> dict:
    resp = client.get_event_selectors(TrailName=name)
    return {"EventSelectors": resp.get("EventSelectors") or [],
            "AdvancedEventSelectors": resp.get("AdvancedEventSelectors") or []}


def _converge_trail(ctx: CheckContext, name: str, region: str) -> dict:
    """Read the trail as it is now and make only the calls it still needs, so two actions on one
    trail (multi_region, then log_validation) do not repeat work and a second run does nothing.
    By name in the trail's home region: StartLogging takes an ARN in AWS but not in the emulator."""
    client = ctx.client("cloudtrail", region)
    trail = client.get_trail(Name=name)["Trail"]
    selectors = _live_selectors(client, name)
    steps = _trail_steps(trail, client.get_trail_status(Name=name), selectors)
    if "cloudtrail:UpdateTrail" in steps:
        client.update_trail(Name=name, **TRAIL_SETTINGS)
    if "cloudtrail:PutEventSelectors" in steps:
        client.put_event_selectors(TrailName=name, **selectors_with_management(selectors))
    if "cloudtrail:StartLogging" in steps:
        client.start_logging(Name=name)
    if not steps:
        return {"message": f"trail {name} already compliant (an earlier action fixed it)", "calls": []}
    return {"message": f"trail {name}: {'; '.join(_STEP_TEXT[s] for s in steps)}", "calls": steps}


def _converge_action(ctx: CheckContext, trail: dict) -> Action | None:
    steps = _trail_steps(trail, trail_status(ctx, trail), event_selectors(ctx, trail))
    if not steps:
        return None  # what is wrong (a delivery error) is the bucket's, which Terraform owns
    name, region = trail["Name"], home_region(trail)
    note = "" if name == ctx.baseline.trail_name else \
        f" in place (not the baseline's trail {ctx.baseline.trail_name}; fixing it avoids paying for a second trail)"
    description = f"update trail {name} ({region}){note}: {'; '.join(_STEP_TEXT[s] for s in steps)}"
    return Action(ctx.control_id, ctx.region, trail["TrailARN"], description, steps,
                  lambda: _converge_trail(ctx, name, region))


# -- creating the baseline trail ----------------------------------------------------------------

def _trail_exists(client, name: str) -> bool:
    try:
        client.get_trail(Name=name)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "TrailNotFoundException":
            return False
        raise
    return True


def _allows_cloudtrail(policy: dict, action: str, resource: str, trail_arn: str, account_id: str) -> bool:
    """Does an Allow statement let cloudtrail.amazonaws.com do `action` on `resource` for this
    trail (its aws:SourceArn / aws:SourceAccount conditions, when present, admit it)?"""
    for st in _statements(policy):
        principal = st.get("Principal")
        services = _as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if (st.get("Effect") != "Allow" or "cloudtrail.amazonaws.com" not in services
                or not _matches_any(_as_list(st.get("Action")), action)
                or not _matches_any(_as_list(st.get("Resource")), resource)):
            continue
        source_arns = _condition_values(st, "aws:SourceArn")
        accounts = [str(v) for v in _condition_values(st, "aws:SourceAccount")]
        if (not source_arns or _matches_any(source_arns, trail_arn)) and (not accounts or account_id in accounts):
            return True
    return False


def _bucket_refuses_cloudtrail(ctx: CheckContext, bucket: str) -> str | None:
    """Why CloudTrail could not deliver to the log bucket, or None. CloudTrail itself checks the
    ACL read and the object write when a trail is created; this says which is missing first."""
    s3 = ctx.client("s3", ctx.baseline.home_region)
    try:
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except botocore.exceptions.ClientError as exc:
        code = error_code(exc)
        if code == "NoSuchBucket":
            return f"the log bucket {bucket} does not exist"
        if code == "NoSuchBucketPolicy":
            return f"the log bucket {bucket} has no bucket policy letting CloudTrail write"
        raise
    bucket_arn = f"arn:{partition_for(ctx.baseline.home_region)}:s3:::{bucket}"
    objects = f"{bucket_arn}/{ctx.baseline.cloudtrail.s3_key_prefix}/AWSLogs/{ctx.account_id}/CloudTrail/log.json.gz"
    trail_arn = baseline_trail_arn(ctx)
    missing = [what for what, action, resource in (("s3:GetBucketAcl on the bucket", "s3:GetBucketAcl", bucket_arn),
                                                   ("s3:PutObject under its prefix", "s3:PutObject", objects))
               if not _allows_cloudtrail(policy, action, resource, trail_arn, ctx.account_id)]
    if missing:
        return (f"the policy of log bucket {bucket} does not grant cloudtrail.amazonaws.com "
                f"{' and '.join(missing)} for trail {trail_arn}")
    return None


def _trail_prerequisites(ctx: CheckContext) -> list[str]:
    """What creating the baseline trail creates first, in order, because it is missing (asked by
    the planner, for the action's description)."""
    home = ctx.baseline.home_region
    desired = resources.trail(ctx.baseline, ctx.account_id)
    todo = []
    if converge.key_by_alias(ctx.client("kms", home), desired.bucket.key.alias) is None:
        todo.append(f"the KMS key {desired.bucket.key.alias}")
    if not converge.bucket_exists(ctx.client("s3", home), desired.bucket.name):
        todo.append(f"the log bucket {desired.bucket.name} (public access blocked, owner enforced, versioned, "
                    f"SSE-KMS, expiring after {desired.bucket.expiration_days} days, its bucket policy)")
    if converge.find_log_group(ctx.client("logs", home), desired.log_group.name) is None:
        todo.append(f"the log group {desired.log_group.name} ({desired.log_group.retention_days} days, that key)")
    if converge.role_arn(ctx.aws.client("iam"), desired.role.name) is None:
        todo.append(f"the delivery role {desired.role.name}")
    return todo


def _create_baseline_trail(ctx: CheckContext) -> dict:
    """The cloudtrail module's trail, its prerequisites first: key, bucket (a bucket that exists
    is used as it is, and must let CloudTrail write), log group, role; then the trail."""
    home, name = ctx.baseline.home_region, ctx.baseline.trail_name
    client = ctx.client("cloudtrail", home)
    if _trail_exists(client, name):  # the other control's action created it earlier in this run
        return _converge_trail(ctx, name, home)
    desired = resources.trail(ctx.baseline, ctx.account_id)
    kms, iam, s3 = ctx.client("kms", home), ctx.aws.client("iam"), ctx.client("s3", home)
    if converge.bucket_exists(s3, desired.bucket.name):
        # Someone's bucket (or the module's, half applied): used as it is, never reconfigured,
        # and checked before anything is created.
        problem = _bucket_refuses_cloudtrail(ctx, desired.bucket.name)
        if problem:
            raise MissingPrerequisite(f"cannot create trail {name}: {problem}; apply the cloudtrail Terraform "
                                      "module first (it declares the bucket's policy) or fix that policy")
    # What ensure_key did (a losing race's key is scheduled for deletion, with its cancel command)
    # and what an existing log group or role needed to match the module.
    notes: list[str] = []
    key_arn = converge.ensure_key(kms, desired.bucket.key, notes)
    converge.ensure_bucket(s3, kms, desired.bucket, home, notes)
    group = converge.ensure_log_group(ctx.client("logs", home), kms, desired.log_group, notes)
    role_arn = converge.ensure_role(iam, desired.role, notes)
    partition = partition_for(home)
    kwargs: dict[str, Any] = dict(
        Name=name, S3BucketName=desired.bucket.name, S3KeyPrefix=desired.prefix, **desired.settings,
        KmsKeyId=key_arn, CloudWatchLogsRoleArn=role_arn,
        CloudWatchLogsLogGroupArn=f"arn:{partition}:logs:{home}:{ctx.account_id}:log-group:{group}:*",
        TagsList=[{"Key": k, "Value": v} for k, v in desired.bucket.tags.items()])
    if desired.organization:
        kwargs["IsOrganizationTrail"] = True
    arn = converge.with_propagation_retry(lambda: client.create_trail(**kwargs))["TrailARN"]
    client.put_event_selectors(TrailName=name, EventSelectors=[dict(s) for s in desired.event_selectors])
    client.start_logging(Name=name)
    return {"message": f"created and started trail {arn}" + converge.said(notes),
            "trail_arn": arn}


def _create_action(ctx: CheckContext) -> Action:
    home, name = ctx.baseline.home_region, ctx.baseline.trail_name
    bucket = ctx.baseline.log_bucket_name(ctx.account_id)
    todo = _trail_prerequisites(ctx)
    first = f"First creates {', then '.join(todo)}, as the cloudtrail module declares them. " if todo else ""
    description = (f"create the baseline trail {name} in {home}: multi-region, global service events, log file "
                   f"validation, read and write management events, to s3://{bucket}/"
                   f"{ctx.baseline.cloudtrail.s3_key_prefix}/, encrypted with {resources.trail_key_alias(ctx.baseline)}, "
                   f"copied to CloudWatch Logs; then start logging. {first}An existing bucket is used "
                   "only if its policy lets CloudTrail write")
    calls = (converge.key_calls(ctx.client("kms", home), resources.trail_key_alias(ctx.baseline))
             + ["s3:CreateBucket (if missing)", "logs:CreateLogGroup (if missing)",
                "logs:TagResource (if a tag differs)", *converge.ROLE_CALLS, "s3:GetBucketPolicy", "cloudtrail:CreateTrail",
                "cloudtrail:PutEventSelectors", "cloudtrail:StartLogging"])
    return Action(ctx.control_id, ctx.region, baseline_trail_arn(ctx), description, calls,
                  lambda: _create_baseline_trail(ctx))


# -- the planners ---------------------------------------------------------------------------------

def _trail_to_fix(ctx: CheckContext) -> dict | None:
    """The baseline's trail when it exists; else this account's trail nearest to compliant
    (multi-region first, then fewest gaps); None when the account has no trail of its own."""
    own = [t for t in trails(ctx) if _own(ctx, t)]
    named = [t for t in own if t["Name"] == ctx.baseline.trail_name]
    if named:
        return named[0]

    def distance(trail: dict) -> tuple:
        return (not trail.get("IsMultiRegionTrail"), len(_multi_region_gaps(_trail_summary(ctx, trail))),
                trail["TrailARN"])

    return min(own, key=distance, default=None)


@fix("cloudtrail.multi_region")
def fix_multi_region(ctx: CheckContext, failed: list[Finding]) -> list[Action]:
    """One action: bring the baseline's trail (or, without it, the account's nearest trail, in
    place) to multi-region, global events, validation, all management events and logging; with
    no trail of the account's own, create the baseline's trail into the module's log bucket."""
    target = _trail_to_fix(ctx)
    if target is None:
        return [_create_action(ctx)]
    action = _converge_action(ctx, target)
    return [action] if action else []


@fix("cloudtrail.log_validation")
def fix_log_validation(ctx: CheckContext, failed: list[Finding]) -> list[Action]:
    """One action per trail without validation: update_trail EnableLogFileValidation=True; with
    no trail at all, create the baseline's trail (which validates)."""
    by_arn = {t["TrailARN"]: t for t in trails(ctx)}
    actions: list[Action] = []
    for finding in failed:
        trail = by_arn.get(finding.resource)
        if trail is None:
            if finding.resource == ctx.account_id and not any(_own(ctx, t) for t in by_arn.values()):
                actions.append(_create_action(ctx))
            continue
        if not _own(ctx, trail):
            continue  # another account's organization trail: only that account can change it
        name, region = trail["Name"], home_region(trail)
        wanted = ctx.baseline.trail_name
        note = "" if name == wanted else f" in place (not the baseline's trail {wanted})"

        def run(name: str = name, region: str = region) -> dict:
            ctx.client("cloudtrail", region).update_trail(Name=name, EnableLogFileValidation=True)
            return {"message": f"log file validation on for trail {name}"}

        actions.append(Action(ctx.control_id, ctx.region, trail["TrailARN"],
                              f"turn on log file validation (digest files) for trail {name} ({region}){note}",
                              ["cloudtrail:UpdateTrail"], run))
    return actions
