data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  dns_suffix = data.aws_partition.current.dns_suffix

  # "No key given", spelled so checkov 3.3 can evaluate it: it reads `var.kms_key_arn == null`
  # (and any value a root module passes in) as false, drops the key and never checks it.
  create_kms_key = can(coalesce(var.kms_key_arn)) ? false : true

  ec2_service = "ec2.${var.region}.${local.dns_suffix}"
  # Created by AWS on the first Auto Scaling group of the account; it launches the instances,
  # so without access to the default key every ASG launch with an encrypted volume fails.
  autoscaling_role_arn = "arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"

  kms_key_arn = local.create_kms_key ? aws_kms_key.this[0].arn : var.kms_key_arn
  # A key ARN ends in key/<key-id>, so the id is known for a key passed in as well.
  kms_key_id = local.create_kms_key ? aws_kms_key.this[0].key_id : element(split("/", var.kms_key_arn), 1)

  ebs_use_actions = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
  ]

  # Kept as data (not inline) so the tests can read each statement.
  kms_key_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        # Without the account root as administrator the key becomes unmanageable.
        Sid       = "AccountRootAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        # What the AWS managed aws/ebs key allows: every principal of this account, but only
        # through EC2 in this region, so default encryption never blocks a volume launch while
        # the key cannot be used for anything but EBS.
        Sid       = "AccountPrincipalsUseThroughEc2Only"
        Effect    = "Allow"
        Principal = { AWS = "*" }
        Action    = local.ebs_use_actions
        Resource  = "*"
        Condition = {
          StringEquals = {
            "kms:ViaService"    = local.ec2_service
            "kms:CallerAccount" = local.account_id
          }
        }
      },
      {
        Sid       = "AccountPrincipalsGrantToAwsResourcesThroughEc2Only"
        Effect    = "Allow"
        Principal = { AWS = "*" }
        Action    = "kms:CreateGrant"
        Resource  = "*"
        Condition = {
          StringEquals = {
            "kms:ViaService"    = local.ec2_service
            "kms:CallerAccount" = local.account_id
          }
          Bool = {
            "kms:GrantIsForAWSResource" = "true"
          }
        }
      },
      {
        # Matched by aws:PrincipalArn rather than named as the principal: KMS rejects a policy
        # naming a role that does not exist yet, and the role only exists once the account has
        # had an Auto Scaling group.
        Sid       = "AutoScalingServiceLinkedRoleUse"
        Effect    = "Allow"
        Principal = { AWS = "*" }
        Action    = local.ebs_use_actions
        Resource  = "*"
        Condition = {
          StringEquals = {
            "kms:CallerAccount" = local.account_id
          }
          ArnEquals = {
            "aws:PrincipalArn" = local.autoscaling_role_arn
          }
        }
      },
      {
        Sid       = "AutoScalingServiceLinkedRoleGrantToAwsResources"
        Effect    = "Allow"
        Principal = { AWS = "*" }
        Action    = "kms:CreateGrant"
        Resource  = "*"
        Condition = {
          StringEquals = {
            "kms:CallerAccount" = local.account_id
          }
          ArnEquals = {
            "aws:PrincipalArn" = local.autoscaling_role_arn
          }
          Bool = {
            "kms:GrantIsForAWSResource" = "true"
          }
        }
      },
    ]
  }
}

################################################################################
# Regional default EBS key (created only when none is passed in)
################################################################################

resource "aws_kms_key" "this" {
  count = local.create_kms_key ? 1 : 0

  region                   = var.region
  description              = "Default EBS encryption key of ${var.region} (${var.name_prefix})"
  key_usage                = "ENCRYPT_DECRYPT"
  customer_master_key_spec = "SYMMETRIC_DEFAULT"
  enable_key_rotation      = true
  deletion_window_in_days  = var.kms_deletion_window_days
  multi_region             = false

  policy = jsonencode(local.kms_key_policy)

  tags = merge(var.tags, { Name = "${var.name_prefix}-ebs-${var.region}" })

  # Evidence and the keys that decrypt it: a plain `terraform destroy` (or a change that would
  # replace it) stops here. `harden render|plan|apply|bootstrap --allow-destroy` renders this
  # as false for that run, deliberately (docs/first-apply.md, "Rolling back").
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_kms_alias" "this" {
  count = local.create_kms_key ? 1 : 0

  region        = var.region
  name          = "alias/${var.name_prefix}-ebs"
  target_key_id = aws_kms_key.this[0].key_id
}

################################################################################
# Account-level, per-region EBS settings
################################################################################

resource "aws_ebs_encryption_by_default" "this" {
  region  = var.region
  enabled = true
}

resource "aws_ebs_default_kms_key" "this" {
  region  = var.region
  key_arn = local.kms_key_arn

  lifecycle {
    precondition {
      # EBS only accepts a default key of its own region.
      condition     = var.kms_key_arn == null ? true : split(":", var.kms_key_arn)[3] == var.region
      error_message = "kms_key_arn must be a key in the region ${var.region}."
    }
  }
}
