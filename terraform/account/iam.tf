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
