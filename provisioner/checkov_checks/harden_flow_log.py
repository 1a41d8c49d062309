"""CKV_HARDEN_1: an aws_flow_log captures ALL traffic and has a destination.

Why: checkov ships no check for aws_flow_log. A flow log of ACCEPT or REJECT traffic only hides
half of what an investigation needs (CIS 3.7 / Security Hub EC2.6 ask for ALL), and a flow log
without a destination (log_destination, or the older log_group_name) records nothing anywhere.
An unresolved value fails: a hardening check has to see the setting to vouch for it.
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck


def _first(conf: dict[str, Any], key: str) -> Any:
    # checkov wraps every attribute value in a one-element list
    value = conf.get(key)
    return value[0] if isinstance(value, list) and len(value) == 1 else value


class FlowLogCapturesAllTraffic(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="harden: VPC flow log captures ALL traffic and has a destination",
            id="CKV_HARDEN_1",
            categories=[CheckCategories.LOGGING],
            supported_resources=["aws_flow_log"],
            guideline="https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs.html",
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = ["traffic_type", "log_destination", "log_group_name"]
        result = CheckResult.PASSED
        traffic_type = _first(conf, "traffic_type")
        if traffic_type != "ALL":
            self.details.append(f'traffic_type is {traffic_type!r}, expected "ALL"')
            result = CheckResult.FAILED
        if not (_first(conf, "log_destination") or _first(conf, "log_group_name")):
            self.details.append("no log_destination (or log_group_name)")
            result = CheckResult.FAILED
        return result


check = FlowLogCapturesAllTraffic()
