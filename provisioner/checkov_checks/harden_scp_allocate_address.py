"""CKV_HARDEN_2: an SCP that names ec2:AllocateAddress denies it to all but approved principals/regions.

Why: checkov has no check for aws_organizations_policy, and an SCP is the one control that stops
an Elastic IP allocation before it happens. PASSED when a Deny statement covers
ec2:AllocateAddress (exact, wildcard or NotAction, any case) and its Condition only exempts
principals (aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalOrgID, aws:PrincipalTag/*) or
regions (aws:RequestedRegion) with a String/Arn Not* operator. FAILED when the policy allows
address allocation, or denies it only under conditions that leave it open. UNKNOWN (not reported)
for SCPs that have nothing to do with it, and for other policy types.

One SCP cannot see the others: "some SCP in this configuration denies it" is checked by
provisioner/scan.py over checkov's results (CKV_HARDEN_SCP_SET). The judging logic lives in
harden_iam.py.
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from harden_iam import is_service_control_policy, judge_allocate_address, load_document


class ScpDeniesAllocateAddress(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="harden: SCP denies ec2:AllocateAddress to all but approved principals and regions",
            id="CKV_HARDEN_2",
            categories=[CheckCategories.IAM],
            supported_resources=["aws_organizations_policy"],
            guideline="https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps_examples.html",
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = ["type", "content"]
        if not is_service_control_policy(conf):
            return CheckResult.UNKNOWN
        document = load_document(conf.get("content"))
        if document is None:
            # Unreadable content is reported by CKV_HARDEN_4, not guessed at here.
            return CheckResult.UNKNOWN
        verdict, reasons = judge_allocate_address(document)
        if verdict == "unrelated":
            return CheckResult.UNKNOWN
        self.details.extend(reasons)
        return CheckResult.PASSED if verdict == "pass" else CheckResult.FAILED


check = ScpDeniesAllocateAddress()
