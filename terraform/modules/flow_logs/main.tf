data "aws_caller_identity" "current" {
  lifecycle {
    # Terraform 1.5 cannot compare two variables in a validation block: checked here instead,
    # on a data source every plan reads, so the error shows even when the region has no VPC.
    precondition {
      condition     = var.destination_type != "s3" || var.s3_bucket_arn != null
      error_message = "s3_bucket_arn is required when destination_type is \"s3\"."
    }
  }
}

data "aws_partition" "current" {}

# Read at every plan: a VPC created since the last apply gets its flow log on the next run.
# Only the VPCs this account owns: a VPC shared with it (VPC sharing, AWS RAM) is listed by
# DescribeVpcs too, but a participant "cannot create, delete, or describe flow logs for a shared VPC
# subnet" and cannot modify the owner's resources (VPC User Guide, "Responsibilities and permissions
# for owners and participants": https://docs.aws.amazon.com/vpc/latest/userguide/vpc-share-limitations.html),
# so declaring them fails the apply in every participant account. The owner's baseline covers them.
data "aws_vpcs" "all" {
  count = length(var.vpc_ids) == 0 ? 1 : 0

  region = var.region

  filter {
    name   = "owner-id"
    values = [data.aws_caller_identity.current.account_id]
  }
}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  dns_suffix = data.aws_partition.current.dns_suffix

  vpc_ids = length(var.vpc_ids) > 0 ? var.vpc_ids : data.aws_vpcs.all[0].ids

  to_cloudwatch = var.destination_type == "cloud-watch-logs"
  # "No key given", spelled so checkov 3.3 can evaluate it: it reads `var.kms_key_arn == null`
  # (and any value a root module passes in) as false, drops the key and never checks it.
  create_kms_key = can(coalesce(var.kms_key_arn)) ? false : local.to_cloudwatch

  # Log groups are regional, so the name is unique per region without the region in it.
  log_group_name = "/aws/vpc-flow-logs/${var.name_prefix}"
  # Built from parts (not the resource attribute) so the KMS key policy can name the group
  # before the group exists: CloudWatch Logs checks the key policy when the group is created.
  log_group_arn = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:${local.log_group_name}"

  # AWS expects bucket_ARN/folder/ for a folder; AWSLogs/<account>/vpcflowlogs/... follows it.
  s3_destination = var.s3_bucket_arn == null ? null : "${var.s3_bucket_arn}/${var.s3_key_prefix}/"

  kms_key_arn = local.create_kms_key ? aws_kms_key.this[0].arn : var.kms_key_arn

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
        Sid       = "CloudWatchLogsUseForThisLogGroupOnly"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.${local.dns_suffix}" }
        Action = [
          "kms:Encrypt*",
          "kms:Decrypt*",
          "kms:ReEncrypt*",
          "kms:GenerateDataKey*",
          "kms:Describe*",
        ]
        Resource = "*"
        Condition = {
          ArnEquals = {
            "kms:EncryptionContext:aws:logs:arn" = local.log_group_arn
          }
        }
      },
    ]
  }
}

################################################################################
# KMS key of the log group (created only when none is passed in)
################################################################################

resource "aws_kms_key" "this" {
  count = local.create_kms_key ? 1 : 0

  region                   = var.region
  description              = "Encrypts the VPC flow log group ${local.log_group_name} (${var.name_prefix}, ${var.region})"
  key_usage                = "ENCRYPT_DECRYPT"
  customer_master_key_spec = "SYMMETRIC_DEFAULT"
  enable_key_rotation      = true
  deletion_window_in_days  = var.kms_deletion_window_days
  multi_region             = false

  policy = jsonencode(local.kms_key_policy)

  tags = merge(var.tags, { Name = "${var.name_prefix}-flow-logs-${var.region}" })

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
  name          = "alias/${var.name_prefix}-flow-logs"
  target_key_id = aws_kms_key.this[0].key_id
}

################################################################################
# CloudWatch Logs destination: log group and the role the flow-log service assumes
################################################################################

resource "aws_cloudwatch_log_group" "this" {
  count = local.to_cloudwatch ? 1 : 0

  region            = var.region
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn

  tags = merge(var.tags, { Name = local.log_group_name })

  lifecycle {
    # The flow logs themselves: kept like the key above (lifted by --allow-destroy).
    prevent_destroy = true

    precondition {
      # CloudWatch Logs only accepts a key of the log group's own region.
      condition     = var.kms_key_arn == null ? true : split(":", var.kms_key_arn)[3] == var.region
      error_message = "kms_key_arn must be a key in the region ${var.region}."
    }
  }
}

data "aws_iam_policy_document" "assume_role" {
  count = local.to_cloudwatch ? 1 : 0

  statement {
    sid     = "VpcFlowLogsOfThisAccountAndRegion"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }

    # Confused-deputy protection: only flow logs of this account, in this region.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ec2:${var.region}:${local.account_id}:vpc-flow-log/*"]
    }
  }
}

# IAM is global and this module runs once per region: the region keeps the role name unique.
resource "aws_iam_role" "this" {
  count = local.to_cloudwatch ? 1 : 0

  name                 = "${var.name_prefix}-flow-logs-${var.region}"
  description          = "Lets VPC Flow Logs in ${var.region} write to ${local.log_group_name}"
  assume_role_policy   = data.aws_iam_policy_document.assume_role[0].json
  max_session_duration = 3600

  tags = merge(var.tags, { Name = "${var.name_prefix}-flow-logs-${var.region}" })
}

data "aws_iam_policy_document" "delivery" {
  count = local.to_cloudwatch ? 1 : 0

  statement {
    sid    = "WriteThisLogGroupOnly"
    effect = "Allow"
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:DescribeLogStreams",
    ]
    # The group itself and its streams (log-group:<name>:log-stream:<stream>).
    resources = [
      aws_cloudwatch_log_group.this[0].arn,
      "${aws_cloudwatch_log_group.this[0].arn}:*",
    ]
  }

  # The flow-log service lists log groups before it delivers; AWS's list of what the delivery
  # role needs includes it (VPC User Guide, "IAM role for publishing flow logs to CloudWatch
  # Logs": https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html). It reads
  # names and settings only, and is scoped to this account's log groups in this region.
  # logs:CreateLogGroup, also on that list, is left out: the group exists before any flow log.
  statement {
    sid       = "ListLogGroupsOfThisRegion"
    effect    = "Allow"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"]
  }
}

resource "aws_iam_role_policy" "delivery" {
  count = local.to_cloudwatch ? 1 : 0

  name   = "flow-logs-delivery"
  role   = aws_iam_role.this[0].id
  policy = data.aws_iam_policy_document.delivery[0].json
}

################################################################################
# Flow logs, one per VPC
################################################################################

resource "aws_flow_log" "this" {
  for_each = toset(local.vpc_ids)

  region                   = var.region
  vpc_id                   = each.value
  traffic_type             = var.traffic_type
  log_destination_type     = var.destination_type
  log_destination          = local.to_cloudwatch ? aws_cloudwatch_log_group.this[0].arn : local.s3_destination
  iam_role_arn             = local.to_cloudwatch ? aws_iam_role.this[0].arn : null
  max_aggregation_interval = var.max_aggregation_interval
  log_format               = var.log_format

  dynamic "destination_options" {
    for_each = local.to_cloudwatch ? [] : [1]

    content {
      file_format = var.s3_file_format
      # Hive-style keys (AWSLogs/aws-account-id=<id>/...) would fall outside the
      # <prefix>/AWSLogs/<account>/ path the log bucket policy grants to log delivery.
      hive_compatible_partitions = false
      per_hour_partition         = var.s3_per_hour_partition
    }
  }

  tags = merge(var.tags, { Name = "${var.name_prefix}-flow-logs-${each.value}" })

  # A flow log created before its role can write gets delivery errors until the policy lands.
  depends_on = [aws_iam_role_policy.delivery]
}
