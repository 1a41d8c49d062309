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
        "Action"    = ["ec2:AcceptAddressTransfer", "ec2:AllocateAddress", "ec2:EnableAddressTransfer"]
        "Resource"  = "*"
        "Condition" = { "ArnNotLike" = { "aws:PrincipalArn" = ["arn:aws:iam::123456789012:role/NetworkAdmin"] } }
      },
      {
        "Sid"       = "HardenDenyAllocateAddressOutsideRegions"
        "Effect"    = "Deny"
        "Action"    = ["ec2:AcceptAddressTransfer", "ec2:AllocateAddress", "ec2:EnableAddressTransfer"]
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
        "Action"    = ["cloudtrail:DeleteTrail", "cloudtrail:PutEventSelectors", "cloudtrail:StopLogging", "cloudtrail:UpdateTrail", "config:DeleteConfigurationRecorder", "config:DeleteDeliveryChannel", "config:PutConfigurationRecorder", "config:PutDeliveryChannel", "config:StopConfigurationRecorder", "ec2:DeleteFlowLogs", "ec2:DisableEbsEncryptionByDefault", "ec2:ModifyEbsDefaultKmsKeyId", "ec2:ResetEbsDefaultKmsKeyId"]
        "Resource"  = "*"
        "Condition" = { "ArnNotLike" = { "aws:PrincipalArn" = ["arn:aws:iam::123456789012:role/harden-pipeline"] } }
      },
      {
        "Sid"       = "HardenDenyDetectionChanges"
        "Effect"    = "Deny"
        "Action"    = ["cloudwatch:Delete*", "cloudwatch:Disable*", "cloudwatch:Put*", "events:Delete*", "events:Disable*", "events:Put*", "events:Remove*", "iam:Attach*", "iam:Delete*", "iam:Detach*", "iam:Put*", "iam:Update*", "kms:Delete*", "kms:Update*", "logs:AssociateKmsKey", "logs:Delete*", "logs:PutMetricFilter", "logs:PutRetentionPolicy", "s3:Delete*", "s3:PutBucket*", "s3:PutLifecycle*", "sns:Delete*", "sns:Remove*", "sns:Set*"]
        "Resource"  = ["arn:*:cloudwatch:*:*:alarm:harden-*", "arn:*:events:*:*:rule/harden-*", "arn:*:iam::*:role/harden-*", "arn:*:kms:*:*:alias/harden-*", "arn:*:logs:*:*:log-group:/aws/cloudtrail/harden-trail*", "arn:*:logs:*:*:log-group:/aws/vpc-flow-logs/harden*", "arn:*:s3:::harden-logs-????????????-eu-west-1*", "arn:*:sns:*:*:harden-security-alarms"]
        "Condition" = { "ArnNotLike" = { "aws:PrincipalArn" = ["arn:aws:iam::123456789012:role/harden-pipeline"] } }
      },
      {
        "Sid"       = "HardenDenyKeyShutdown"
        "Effect"    = "Deny"
        "Action"    = ["kms:DisableKey", "kms:ScheduleKeyDeletion"]
        "Resource"  = "*"
        "Condition" = { "ForAnyValue:StringLike" = { "kms:ResourceAliases" = ["alias/harden-*"] } }
      },
    ]
  })
}
