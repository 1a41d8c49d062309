"""CKV_HARDEN_3: an aws_cloudtrail is multi-region, validates log files, and logs global services.

Why: an AllocateAddress in a region the trail does not cover leaves no record, and the alarm on
it (alarms.allocate_address) never fires; unvalidated log files can be edited after the fact
(CIS 3.1/3.2, Security Hub CloudTrail.1/CloudTrail.4); and without global service events the IAM
and STS calls that show who allocated an address are missing. checkov's built-in checks cover the
first two separately; this check keeps harden's trail contract in one place.
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck


def _first(conf: dict[str, Any], key: str, default: Any = None) -> Any:
    # checkov wraps every attribute value in a one-element list
    value = conf.get(key, default)
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


class CloudTrailMultiRegionValidated(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="harden: CloudTrail is multi-region, with log file validation and global service events",
            id="CKV_HARDEN_3",
            categories=[CheckCategories.LOGGING],
            supported_resources=["aws_cloudtrail"],
            guideline="https://docs.aws.amazon.com/awscloudtrail/latest/userguide/receive-cloudtrail-log-files-from-multiple-regions.html",
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = ["is_multi_region_trail", "enable_log_file_validation", "include_global_service_events"]
        result = CheckResult.PASSED
        if not _is_true(_first(conf, "is_multi_region_trail")):
            self.details.append("is_multi_region_trail is not true")
            result = CheckResult.FAILED
        if not _is_true(_first(conf, "enable_log_file_validation")):
            self.details.append("enable_log_file_validation is not true")
            result = CheckResult.FAILED
        # Terraform's default is true: only an explicit false turns global events off.
        if _is_false(_first(conf, "include_global_service_events", True)):
            self.details.append("include_global_service_events is false")
            result = CheckResult.FAILED
        return result


check = CloudTrailMultiRegionValidated()
