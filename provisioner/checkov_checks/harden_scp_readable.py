"""CKV_HARDEN_4: an SCP's content is a policy document checkov can evaluate.

Why: CKV_HARDEN_2 can only judge what checkov evaluates. Content built from a data source
(data.aws_iam_policy_document.x.json), file(), or jsonencode() around conditionals or merge()
reaches checkov as an unevaluated string, and the SCP would silently escape every check. Write
SCPs as jsonencode() of literal maps/lists (variables and locals are fine) or as literal JSON.

This check also gives scan.py the inventory of SCPs in a configuration (it reports on every SCP,
where CKV_HARDEN_2 stays silent on unrelated ones): the set-level rule CKV_HARDEN_SCP_SET needs
to know an SCP exists even when none of them mentions ec2:AllocateAddress.
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from harden_iam import is_service_control_policy, load_document, read_statements, unwrap


class ScpContentReadable(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="harden: SCP content is a policy document checkov can evaluate (jsonencode or literal JSON)",
            id="CKV_HARDEN_4",
            categories=[CheckCategories.IAM],
            supported_resources=["aws_organizations_policy"],
            guideline="https://developer.hashicorp.com/terraform/language/functions/jsonencode",
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = ["type", "content"]
        if not is_service_control_policy(conf):
            return CheckResult.UNKNOWN
        content = unwrap(conf.get("content"))
        document = load_document(content)
        if document is None:
            text = " ".join(str(content).split())
            self.details.append(f"content is not a policy document checkov can evaluate: {text[:80]}")
            return CheckResult.FAILED
        _, problems = read_statements(document)
        self.details.extend(problems)
        return CheckResult.FAILED if problems else CheckResult.PASSED


check = ScpContentReadable()
