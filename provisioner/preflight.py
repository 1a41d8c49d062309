"""Checks made with the caller's credentials before Terraform touches an account: what a plan
cannot tell until it is too late, or tells in a way nobody reads."""

from __future__ import annotations

import botocore.exceptions

from provisioner.aws import AwsSession, describe_error, error_code
from provisioner.baseline import Baseline


class PreflightError(Exception):
    """The account root must not be planned or applied with these credentials (one line)."""


def check_organization_trail(aws: AwsSession, baseline: Baseline) -> str | None:
    """An organization trail belongs to the organization's management account whoever creates it
    (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/creating-trail-organization.html),
    and the bucket and key policies name that account's trail ARN. So the account root is applied
    from the management account only: the owner is read from DescribeOrganization's
    MasterAccountId (callable from any account of the organization), never assumed. Returns the
    management account id; raises PreflightError elsewhere. No-op without an organization trail."""
    if not baseline.cloudtrail.organization_trail:
        return None
    try:
        org = aws.client("organizations").describe_organization()["Organization"]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "AWSOrganizationsNotInUseException":
            raise PreflightError("cloudtrail.organization_trail = true, but this account is not in an "
                                 "AWS Organization") from None
        raise PreflightError(f"cloudtrail.organization_trail: cannot read the organization: "
                             f"{describe_error(exc)}") from None
    management, caller = org["MasterAccountId"], aws.account_id()
    if baseline.organization_id and org["Id"] != baseline.organization_id:
        raise PreflightError(f"organization_id is {baseline.organization_id}, but these credentials belong to "
                             f"organization {org['Id']}")
    if caller != management:
        raise PreflightError(f"cloudtrail.organization_trail: the trail belongs to the management account "
                             f"{management}; these credentials are account {caller}. Apply the account root "
                             "from the management account, or set organization_trail = false")
    return management
