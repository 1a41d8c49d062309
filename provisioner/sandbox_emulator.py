"""Additions to the moto emulator, for the sandbox only.

This module exists only because moto (5.2) lacks APIs that harden's checks call:

* `cloudtrail:LookupEvents` (not implemented: moto raises NotImplementedError);
* `config:DescribeDeliveryChannelStatus` (declared, raises NotImplementedError);
* `ec2:GetEbsDefaultKmsKeyId` (not implemented; moto does implement ModifyEbsDefaultKmsKeyId and
  keeps the key it sets);
* `service-quotas:GetServiceQuota` / `GetAWSDefaultServiceQuota` for the EC2 Elastic IP quota
  (moto knows only the `vpc` service's quotas);
* `ec2:EnableImageDeprecation` (not implemented; without it no image is ever deprecated).

and because an e-mail subscription in moto is confirmed at once, where in AWS it stays pending
until somebody clicks the link (the sandbox seeds a pending one).

moto dispatches an action to the method of its `*Response` class named after the action in
snake_case (`BaseResponse.call_action`), so an API is added by setting that method on the class.
`install()` does it, `uninstall()` puts the classes back as they were; both are idempotent and
reference-counted, so a sandbox in a test process does not leak into other tests. The answers are
derived from the emulator's own state, never invented:

* LookupEvents answers from events recorded with `record_event()` (the sandbox seeds a few
  AllocateAddress calls; CloudTrail's event history is the only source of "who allocated"), with
  AWS's filters (one lookup attribute, time range), newest first, and NextToken pagination.
* DescribeDeliveryChannelStatus derives each channel's status from what exists: delivery
  succeeds when a recorder is recording and the channel's bucket exists, fails with NoSuchBucket
  when it does not, and is Not_Applicable while nothing records.
* GetEbsDefaultKmsKeyId returns the key set with ModifyEbsDefaultKmsKeyId, else `alias/aws/ebs`
  (what AWS returns when no customer key was chosen).

The checks' own tests do not rely on this: they stub these APIs with botocore's Stubber, which
validates against the real service model. If a future moto implements an API, install() leaves
moto's own implementation in place.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from moto.cloudtrail.models import cloudtrail_backends
from moto.cloudtrail.responses import CloudTrailResponse
from moto.config.models import config_backends
from moto.config.responses import ConfigResponse
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.ec2.responses import EC2Response
from moto.servicequotas.responses import ServiceQuotasResponse

_EVENTS_ATTR = "_harden_sandbox_events"  # on a CloudTrailBackend: wiped by moto's reset with it
_LOOKUP_KEYS = {"EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName",
                "EventSource", "AccessKeyId"}
_MAX_RESULTS = 50

_lock = threading.Lock()
_installs = 0
_saved: dict[tuple[type, str], Any] = {}
_MISSING = object()


# =============================================================================================
# cloudtrail:LookupEvents
# =============================================================================================

def _events(account_id: str, region: str) -> list[dict]:
    backend = cloudtrail_backends[account_id][region]
    if not hasattr(backend, _EVENTS_ATTR):
        setattr(backend, _EVENTS_ATTR, [])
    return getattr(backend, _EVENTS_ATTR)


def record_event(account_id: str, region: str, *, event_name: str, user_identity: dict,
                 event_time: datetime, source_ip: str, user_agent: str, event_source: str = "ec2.amazonaws.com",
                 request_parameters: dict | None = None, response_elements: dict | None = None,
                 resources: list[dict] | None = None, read_only: bool = False,
                 error_code: str | None = None) -> dict:
    """Store one management event in the region's event history, as CloudTrail would record it.

    `user_identity` is CloudTrail's userIdentity block; `resources` are LookupEvents' Resources
    ({"ResourceType": "AWS::EC2::EIP", "ResourceName": "eipalloc-..."}). Returns the record.
    """
    event_id = str(uuid.uuid4())
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": user_identity,
        "eventTime": event_time.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": user_agent,
        "requestParameters": request_parameters,
        "responseElements": response_elements,
        "requestID": str(uuid.uuid4()),
        "eventID": event_id,
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account_id,
        "eventCategory": "Management",
    }
    if error_code:
        record["errorCode"] = error_code
    username = (user_identity.get("userName")
                or (user_identity.get("arn", "").rsplit("/", 1)[-1] if user_identity.get("type") == "AssumedRole" else None)
                or user_identity.get("principalId", ""))
    stored = {
        "EventId": event_id,
        "EventName": event_name,
        "ReadOnly": "true" if read_only else "false",
        "AccessKeyId": user_identity.get("accessKeyId", ""),
        "EventTime": event_time.astimezone(timezone.utc),
        "EventSource": event_source,
        "Username": username,
        "Resources": list(resources or []),
        "CloudTrailEvent": json.dumps(record),
    }
    with _lock:
        _events(account_id, region).append(stored)
    return record


def _timestamp(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    except (TypeError, ValueError):
        try:
            return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise JsonRESTError("InvalidTimeRangeException", f"{name} is not a valid time") from None


def _matches(event: dict, attributes: list[dict]) -> bool:
    for attribute in attributes:
        key, value = attribute.get("AttributeKey"), attribute.get("AttributeValue")
        if key == "ResourceType":
            if not any(r.get("ResourceType") == value for r in event["Resources"]):
                return False
        elif key == "ResourceName":
            if not any(r.get("ResourceName") == value for r in event["Resources"]):
                return False
        elif event.get(key) != value:
            return False
    return True


def _lookup_events(self: CloudTrailResponse) -> str:
    attributes = self._get_param("LookupAttributes") or []
    if len(attributes) > 1:
        raise JsonRESTError("InvalidLookupAttributesException",
                            "You can specify only one lookup attribute per request.")
    for attribute in attributes:
        if attribute.get("AttributeKey") not in _LOOKUP_KEYS:
            raise JsonRESTError("InvalidLookupAttributesException",
                                f"Unknown attribute key {attribute.get('AttributeKey')!r}.")
    now = datetime.now(timezone.utc)
    start = _timestamp(self._get_param("StartTime"), "StartTime") or now - timedelta(days=90)
    end = _timestamp(self._get_param("EndTime"), "EndTime") or now
    if start > end:
        raise JsonRESTError("InvalidTimeRangeException", "StartTime must be before EndTime.")
    max_results = self._get_param("MaxResults") or _MAX_RESULTS
    if not 1 <= int(max_results) <= _MAX_RESULTS:
        raise JsonRESTError("InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
    if self._get_param("EventCategory") == "insight":
        return json.dumps({"Events": []})  # the sandbox records no Insights events

    with _lock:
        stored = list(_events(self.current_account, self.region))
    found = sorted((e for e in stored if start <= e["EventTime"] <= end and _matches(e, attributes)),
                   key=lambda e: e["EventTime"], reverse=True)
    offset = _decode_token(self._get_param("NextToken"))
    page = found[offset: offset + int(max_results)]
    body: dict[str, Any] = {"Events": [{**e, "EventTime": e["EventTime"].timestamp()} for e in page]}
    if offset + int(max_results) < len(found):
        body["NextToken"] = base64.urlsafe_b64encode(f"harden:{offset + int(max_results)}".encode()).decode()
    return json.dumps(body)


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        prefix, _, offset = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if prefix == "harden" and offset.isdigit():
            return int(offset)
    except (ValueError, UnicodeDecodeError):
        pass
    raise JsonRESTError("InvalidNextTokenException", "Invalid NextToken.")


# =============================================================================================
# config:DescribeDeliveryChannelStatus
# =============================================================================================

def _bucket_exists(account_id: str, partition: str, name: str) -> bool:
    from moto.s3.models import s3_backends

    return name in s3_backends[account_id][partition].buckets


def _channel_status(account_id: str, partition: str, channel: Any, recording: bool) -> dict:
    now = datetime.now(timezone.utc).timestamp()
    if not recording:
        export: dict[str, Any] = {"lastStatus": "Not_Applicable"}
    elif _bucket_exists(account_id, partition, channel.s3_bucket_name):
        export = {"lastStatus": "Success", "lastAttemptTime": now, "lastSuccessfulTime": now,
                  "nextDeliveryTime": now + 24 * 3600}
    else:
        export = {"lastStatus": "Failure", "lastErrorCode": "NoSuchBucket",
                  "lastErrorMessage": "The specified bucket does not exist", "lastAttemptTime": now,
                  "nextDeliveryTime": now + 24 * 3600}
    stream = {"lastStatus": "Success" if recording and channel.sns_topic_arn else "Not_Applicable",
              "lastStatusChangeTime": now}
    return {"name": channel.name, "configSnapshotDeliveryInfo": dict(export),
            "configHistoryDeliveryInfo": dict(export), "configStreamDeliveryInfo": stream}


def _describe_delivery_channel_status(self: ConfigResponse) -> str:
    from moto.config.exceptions import NoSuchDeliveryChannelException

    backend = config_backends[self.current_account][self.region]
    names = self._get_param("DeliveryChannelNames") or []
    for name in names:
        if name not in backend.delivery_channels:
            raise NoSuchDeliveryChannelException(name)
    channels = [backend.delivery_channels[n] for n in names] or list(backend.delivery_channels.values())
    recording = any(r.status.recording for r in backend.recorders.values())
    statuses = [_channel_status(self.current_account, self.partition, c, recording) for c in channels]
    return json.dumps({"DeliveryChannelsStatus": statuses})


# =============================================================================================
# ec2:GetEbsDefaultKmsKeyId
# =============================================================================================

AWS_MANAGED_EBS_ALIAS = "alias/aws/ebs"


def _get_ebs_default_kms_key_id(self: EC2Response) -> ActionResult:
    self.error_on_dryrun()
    key = self.ec2_backend.default_kms_key_id
    if key and key == _aws_managed_ebs_key_arn(self.current_account, self.region):
        key = ""  # moto sets it to the AWS managed key when it first encrypts a volume by default
    return ActionResult({"KmsKeyId": key or AWS_MANAGED_EBS_ALIAS})


def _aws_managed_ebs_key_arn(account_id: str, region: str) -> str | None:
    from moto.kms.models import kms_backends

    kms = kms_backends[account_id][region]
    if not kms.alias_exists(AWS_MANAGED_EBS_ALIAS):
        return None
    return kms.describe_key(AWS_MANAGED_EBS_ALIAS).arn


# =============================================================================================
# service-quotas: the EC2-VPC Elastic IPs quota
# =============================================================================================

EIP_QUOTA_CODE = "L-0263D0A3"
EIP_DEFAULT_QUOTA = 5.0  # AWS's default per region
_QUOTA_ATTR = "_harden_sandbox_eip_quota"  # on moto's EC2 backend of the region: reset with it


def set_address_quota(account_id: str, region: str, value: float) -> None:
    """The region's applied Elastic IP quota (as a granted increase, or a lowered one, would set it)."""
    from moto.ec2.models import ec2_backends

    setattr(ec2_backends[account_id][region], _QUOTA_ATTR, float(value))


def _eip_quota(account_id: str, region: str, partition: str, value: float) -> dict:
    return {"ServiceCode": "ec2", "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
            "QuotaArn": f"arn:{partition}:servicequotas:{region}:{account_id}:ec2/{EIP_QUOTA_CODE}",
            "QuotaCode": EIP_QUOTA_CODE, "QuotaName": "EC2-VPC Elastic IPs", "Value": value, "Unit": "None",
            "Adjustable": True, "GlobalQuota": False}


def _is_eip_quota(response: ServiceQuotasResponse) -> bool:
    params = json.loads(response.body or "{}")
    return params.get("ServiceCode") == "ec2" and params.get("QuotaCode") == EIP_QUOTA_CODE


def _wrap_get_service_quota(original: Any):
    def get_service_quota(self: ServiceQuotasResponse) -> str:
        if not _is_eip_quota(self):
            return original(self)
        from moto.ec2.models import ec2_backends

        value = getattr(ec2_backends[self.current_account][self.region], _QUOTA_ATTR, EIP_DEFAULT_QUOTA)
        return json.dumps({"Quota": _eip_quota(self.current_account, self.region, self.partition, value)})

    return get_service_quota


def _get_aws_default_service_quota(self: ServiceQuotasResponse) -> str:
    if not _is_eip_quota(self):
        raise JsonRESTError("NoSuchResourceException", "The sandbox knows the default of the Elastic IP quota only.")
    return json.dumps({"Quota": _eip_quota(self.current_account, self.region, self.partition, EIP_DEFAULT_QUOTA)})


# =============================================================================================
# ec2:EnableImageDeprecation
# =============================================================================================

def _enable_image_deprecation(self: EC2Response) -> ActionResult:
    self.error_on_dryrun()
    image_id = self._get_param("ImageId")
    when = _timestamp(self._get_param("DeprecateAt"), "DeprecateAt")
    image = self.ec2_backend.describe_images(ami_ids=[image_id])[0]  # raises InvalidAMIID.NotFound
    # moto's serializer reads DescribeImages' members from attributes of the same name.
    image.DeprecationTime = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return ActionResult({"Return": True})


def set_image_creation_date(account_id: str, region: str, image_id: str, when: datetime) -> None:
    """Backdate an image (RegisterImage stamps it now; the seed needs an image built long ago)."""
    from moto.ec2.models import ec2_backends

    ec2_backends[account_id][region].amis[image_id].creation_date = when.astimezone(timezone.utc)


# =============================================================================================
# A pending e-mail subscription
# =============================================================================================

def mark_subscription_pending(account_id: str, region: str, subscription_arn: str) -> None:
    """Make a subscription look unconfirmed, as an e-mail subscription is until its link is
    clicked: listed with SubscriptionArn "PendingConfirmation", attribute PendingConfirmation true."""
    from moto.sns.models import sns_backends

    subscription = sns_backends[account_id][region].subscriptions[subscription_arn]
    subscription.attributes["PendingConfirmation"] = "true"
    subscription.attributes["ConfirmationWasAuthenticated"] = "false"
    subscription.confirmed = False
    # moto's serializer reads `SubscriptionArn` from the object before falling back to `.arn`.
    subscription.SubscriptionArn = "PendingConfirmation"


# =============================================================================================
# Installing
# =============================================================================================

_PATCHES: dict[tuple[type, str], Any] = {
    (CloudTrailResponse, "lookup_events"): _lookup_events,
    (ConfigResponse, "describe_delivery_channel_status"): _describe_delivery_channel_status,
    (EC2Response, "get_ebs_default_kms_key_id"): _get_ebs_default_kms_key_id,
    (EC2Response, "enable_image_deprecation"): _enable_image_deprecation,
    (ServiceQuotasResponse, "get_aws_default_service_quota"): _get_aws_default_service_quota,
}
# Methods moto implements for other inputs: wrapped, the original still answers those.
_WRAPS: dict[tuple[type, str], Any] = {
    (ServiceQuotasResponse, "get_service_quota"): _wrap_get_service_quota,
}


def _moto_implements(cls: type, name: str) -> bool:
    """A method moto defines that does more than raise NotImplementedError."""
    method = getattr(cls, name, None)
    if method is None:
        return False
    code = getattr(method, "__code__", None)
    # A stub such as `raise NotImplementedError()` references no other global name.
    return not (code and code.co_names == ("NotImplementedError",))


# The AWS managed policies harden attaches (the Config recorder role's service-role/AWS_ConfigRole).
AWS_MANAGED_POLICIES = ("AWS_ConfigRole",)


def load_aws_managed_policies() -> None:
    """AWS accounts have the AWS managed policies; moto loads them only when asked, and all 1,500
    of them at every reset (seconds under load). Only the ones harden attaches are loaded.
    Process-wide, read when an account's IAM backend is created (after each reset)."""
    import json

    import moto.iam.models as iam_models
    from moto.core.config import default_user_config
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    every = json.loads(aws_managed_policies_data)
    iam_models.aws_managed_policies_data = json.dumps({name: every[name] for name in AWS_MANAGED_POLICIES})
    default_user_config.setdefault("iam", {})["load_aws_managed_policies"] = True


def install() -> None:
    """Add the missing APIs to moto (idempotent; pair each call with uninstall())."""
    global _installs
    with _lock:
        _installs += 1
        if _installs > 1:
            return
        for (cls, name), fn in _PATCHES.items():
            if _moto_implements(cls, name):
                continue
            _saved[(cls, name)] = cls.__dict__.get(name, _MISSING)
            setattr(cls, name, fn)
        for (cls, name), wrap in _WRAPS.items():
            _saved[(cls, name)] = cls.__dict__.get(name, _MISSING)
            setattr(cls, name, wrap(getattr(cls, name)))


def uninstall() -> None:
    """Undo install() once the last user is done."""
    global _installs
    with _lock:
        if _installs == 0:
            return
        _installs -= 1
        if _installs:
            return
        for (cls, name), original in _saved.items():
            if original is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, original)
        _saved.clear()


def installed() -> bool:
    return _installs > 0
