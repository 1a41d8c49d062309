# scp.allocate_address and scp.baseline_protection: guardrails no account administrator can lift.
#
# The policy documents are computed by harden from harden.toml (provisioner/policies.py: the
# same documents `harden verify` checks and `harden remediate` attaches) and written here as
# literals, because checkov evaluates jsonencode() of a literal: `harden scan` reads these
# policies as AWS will. To change one, edit harden.toml and run `harden render`.
module "scp" {
  source = "../modules/scp"

  name_prefix      = var.name_prefix
  tags             = var.tags
  target_ids       = var.target_ids
  protect_baseline = var.protect_baseline

  allocate_address_policy_json = jsonencode({
    "Version" = "2012-10-17"
    "Statement" = [
      {
        "Sid"       = "HardenDenyAllocateAddress"
        "Effect"    = "Deny"
        "Action"    = ["ec2:AcceptAddressTransfer", "ec2:AdvertiseByoipCidr", "ec2:AllocateAddress", "ec2:AssociateAddress", "ec2:AssociateNatGatewayAddress", "ec2:CreatePublicIpv4Pool", "ec2:DisassociateAddress", "ec2:DisassociateNatGatewayAddress", "ec2:EnableAddressTransfer", "ec2:ProvisionByoipCidr", "ec2:ProvisionPublicIpv4PoolCidr", "ec2:ReleaseAddress", "globalaccelerator:CreateAccelerator", "globalaccelerator:CreateCustomRoutingAccelerator", "lightsail:AllocateStaticIp", "lightsail:AttachStaticIp"]
        "Resource"  = "*"
        "Condition" = { "ArnNotLike" = { "aws:PrincipalArn" = ["arn:aws:iam::123456789012:role/NetworkAdmin"] } }
      },
      {
        "Sid"       = "HardenDenyAllocateAddressOutsideRegions"
        "Effect"    = "Deny"
        "Action"    = ["ec2:AcceptAddressTransfer", "ec2:AdvertiseByoipCidr", "ec2:AllocateAddress", "ec2:AssociateAddress", "ec2:AssociateNatGatewayAddress", "ec2:CreatePublicIpv4Pool", "ec2:DisassociateAddress", "ec2:DisassociateNatGatewayAddress", "ec2:EnableAddressTransfer", "ec2:ProvisionByoipCidr", "ec2:ProvisionPublicIpv4PoolCidr", "ec2:ReleaseAddress", "lightsail:AllocateStaticIp", "lightsail:AttachStaticIp"]
        "Resource"  = "*"
        "Condition" = { "StringNotEquals" = { "aws:RequestedRegion" = ["eu-west-1", "us-east-1"] } }
      },
    ]
  })

  baseline_protection_policy_json = jsonencode({
    "Version" = "2012-10-17"
    "Statement" = [
      {
        "Sid"       = "HardenDenyBaselineChanges"
        "Effect"    = "Deny"
        "Action"    = ["cloudtrail:DeleteTrail", "cloudtrail:PutEventSelectors", "cloudtrail:StopLogging", "cloudtrail:UpdateTrail", "config:DeleteConfigurationRecorder", "config:DeleteDeliveryChannel", "config:PutConfigurationRecorder", "config:PutDeliveryChannel", "config:StopConfigurationRecorder", "ec2:DeleteFlowLogs", "ec2:DisableEbsEncryptionByDefault", "ec2:ModifyEbsDefaultKmsKeyId", "ec2:ResetEbsDefaultKmsKeyId", "organizations:LeaveOrganization"]
        "Resource"  = "*"
        "Condition" = { "ArnNotLike" = { "aws:PrincipalArn" = ["arn:aws:iam::123456789012:role/harden-pipeline"] } }
      },
      {
        "Sid"       = "HardenDenyDetectionChanges"
        "Effect"    = "Deny"
        "Action"    = ["cloudwatch:Delete*", "cloudwatch:Disable*", "cloudwatch:Put*", "events:Delete*", "events:Disable*", "events:Put*", "events:Remove*", "iam:Attach*", "iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:CreateRole", "iam:CreateServiceSpecificCredential", "iam:CreateUser", "iam:DeactivateMFADevice", "iam:Delete*", "iam:Detach*", "iam:PassRole", "iam:Put*", "iam:ResetServiceSpecificCredential", "iam:Update*", "iam:UpdateAccessKey", "iam:UpdateAssumeRolePolicy", "iam:UpdateLoginProfile", "iam:UploadSSHPublicKey", "iam:UploadSigningCertificate", "kms:Delete*", "kms:Update*", "logs:AssociateKmsKey", "logs:Delete*", "logs:PutMetricFilter", "logs:PutRetentionPolicy", "s3:Delete*", "s3:PutBucket*", "s3:PutLifecycle*", "sns:AddPermission", "sns:Delete*", "sns:Put*", "sns:Remove*", "sns:Set*", "sns:Unsubscribe"]
        "Resource"  = ["arn:*:cloudwatch:*:*:alarm:harden-*", "arn:*:events:*:*:rule/harden-*", "arn:*:iam::*:role/harden-*", "arn:*:kms:*:*:alias/harden-*", "arn:*:logs:*:*:log-group:/aws/cloudtrail/harden-trail*", "arn:*:logs:*:*:log-group:/aws/vpc-flow-logs/harden*", "arn:*:s3:::harden-logs-????????????-eu-west-1*", "arn:*:sns:*:*:harden-security-alarms", "arn:*:sns:*:*:harden-security-alarms:*", "arn:aws:iam::123456789012:role/NetworkAdmin", "arn:aws:iam::123456789012:role/harden-pipeline"]
        "Condition" = { "ArnNotLike" = { "aws:PrincipalArn" = ["arn:aws:iam::123456789012:role/harden-pipeline"] } }
      },
      {
        "Sid"       = "HardenDenyKeyChanges"
        "Effect"    = "Deny"
        "Action"    = ["kms:CreateGrant", "kms:DisableKey", "kms:DisableKeyRotation", "kms:PutKeyPolicy", "kms:ReplicateKey", "kms:RevokeGrant", "kms:ScheduleKeyDeletion", "kms:UpdatePrimaryRegion"]
        "Resource"  = "*"
        "Condition" = { "ArnNotLike" = { "aws:PrincipalArn" = ["arn:aws:iam::123456789012:role/harden-pipeline"] }, "ForAnyValue:StringLike" = { "kms:ResourceAliases" = ["alias/harden-*"] }, "BoolIfExists" = { "kms:GrantIsForAWSResource" = "false" } }
      },
      {
        "Sid"       = "HardenDenyConfigRuleChanges"
        "Effect"    = "Deny"
        "Action"    = ["config:DeleteConfigRule", "config:DeleteEvaluationResults", "config:PutConfigRule", "config:TagResource", "config:UntagResource"]
        "Resource"  = "*"
        "Condition" = { "ArnNotLike" = { "aws:PrincipalArn" = ["arn:aws:iam::123456789012:role/harden-pipeline"] }, "StringEquals" = { "aws:ResourceTag/HardenGuardrail" = "harden" } }
      },
    ]
  })
}
