# The role AWS Config records and delivers with, shared by the recorders of every region (IAM is
# global). A role of our own rather than the service-linked one, so the S3 and KMS grants below
# can be scoped to this baseline's bucket prefix and key.
data "aws_iam_policy_document" "config_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["config.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "config" {
  name               = "${var.name_prefix}-config-recorder"
  description        = "AWS Config recorders and delivery channels of the harden baseline"
  assume_role_policy = data.aws_iam_policy_document.config_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "config" {
  role       = aws_iam_role.config.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWS_ConfigRole"
}

data "aws_iam_policy_document" "config_delivery" {
  # What AWS Config's guide lists for the role's S3 policy: read the bucket's ACL, check it
  # exists and where (ListBucket, GetBucketLocation), write under the prefix. Without the two
  # checks every delivery leaves AccessDenied events in CloudTrail (AWS Config Developer Guide,
  # "Permissions for the IAM role assigned to AWS Config", IAM role policy for the S3 bucket:
  # https://docs.aws.amazon.com/config/latest/developerguide/iamrole-permissions.html#iam-role-policies-S3-bucket).
  statement {
    sid       = "ReadBucketAclAndLocation"
    actions   = ["s3:GetBucketAcl", "s3:GetBucketLocation", "s3:ListBucket"]
    resources = [module.cloudtrail.bucket_arn]
  }
  statement {
    sid       = "DeliverSnapshotsAndHistory"
    actions   = ["s3:PutObject"]
    resources = ["${module.cloudtrail.bucket_arn}/${local.config_key_prefix}/AWSLogs/${local.account_id}/Config/*"]
    condition {
      test     = "StringEquals"
      variable = "s3:x-amz-acl"
      values   = ["bucket-owner-full-control"]
    }
  }
  statement {
    sid       = "EncryptDeliveries"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [module.cloudtrail.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "config_delivery" {
  name   = "deliver-to-log-bucket"
  role   = aws_iam_role.config.id
  policy = data.aws_iam_policy_document.config_delivery.json
}

# The role EventBridge assumes in every region but the home one to send Elastic IP events and alarm
# state changes to the home region's default event bus, so the one topic there hears everything
# (cross-region bus targets need a role: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-region.html).
# Trust: EventBridge, for this account's two forwarding rules only; for a rule's target role
# aws:SourceArn is the rule ARN (EventBridge User Guide, "Cross-service confused deputy
# prevention": https://docs.aws.amazon.com/eventbridge/latest/userguide/cross-service-confused-deputy-prevention.html).
data "aws_iam_policy_document" "event_forwarding_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values = [
        "arn:${data.aws_partition.current.partition}:events:*:${local.account_id}:rule/${var.name_prefix}-elastic-ip-api-calls",
        "arn:${data.aws_partition.current.partition}:events:*:${local.account_id}:rule/${var.name_prefix}-alarm-state-changes",
      ]
    }
  }
}

resource "aws_iam_role" "event_forwarding" {
  name               = "${var.name_prefix}-events-to-home-region"
  description        = "EventBridge sends harden's Elastic IP events and alarm state changes to the default event bus of ${var.home_region}"
  assume_role_policy = data.aws_iam_policy_document.event_forwarding_assume.json
  tags               = var.tags
}

# PutEvents on the home region's default bus, nothing else. The bus needs no resource policy for
# this: it is the same account, and a same-account sender is authorised by its IAM policy alone
# (bus resource policies are for other accounts: "Permissions for event buses in Amazon
# EventBridge", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus-perms.html).
data "aws_iam_policy_document" "event_forwarding" {
  statement {
    sid       = "PutEventsOnTheHomeBusOnly"
    actions   = ["events:PutEvents"]
    resources = ["arn:${data.aws_partition.current.partition}:events:${var.home_region}:${local.account_id}:event-bus/default"]
  }
}

resource "aws_iam_role_policy" "event_forwarding" {
  name   = "put-events-on-home-bus"
  role   = aws_iam_role.event_forwarding.id
  policy = data.aws_iam_policy_document.event_forwarding.json
}
