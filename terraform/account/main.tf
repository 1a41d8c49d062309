data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# Enabled regions (opt-in regions only once opted in); read only when `regions` is null.
data "aws_regions" "enabled" {}

locals {
  account_id  = data.aws_caller_identity.current.account_id
  regions     = toset(var.regions != null ? var.regions : data.aws_regions.enabled.names)
  bucket_name = coalesce(var.log_bucket_name, "${var.name_prefix}-logs-${local.account_id}-${var.home_region}")
  # Where AWS Config delivers inside the log bucket (null: Config is not part of this baseline).
  config_key_prefix = "config"
}

# -- cloudtrail.*: the trail, its key, its bucket (also the Config and flow-log destination) ----
module "cloudtrail" {
  source = "../modules/cloudtrail"

  region                   = var.home_region
  name_prefix              = var.name_prefix
  tags                     = var.tags
  trail_name               = "harden-trail"
  bucket_name              = local.bucket_name
  s3_key_prefix            = "cloudtrail"
  is_organization_trail    = false
  organization_id          = "o-a1b2c3d4e5"
  log_retention_days       = 365
  log_expiration_days      = 2555
  kms_deletion_window_days = 30
  config_s3_key_prefix     = local.config_key_prefix
  flow_logs_s3_key_prefix  = null
}

# -- config.*: a recorder in every region, global resource types recorded in the home region only
module "config" {
  source   = "../modules/config"
  for_each = local.regions

  region                        = each.key
  name_prefix                   = var.name_prefix
  tags                          = var.tags
  iam_role_arn                  = aws_iam_role.config.arn
  s3_bucket_name                = module.cloudtrail.bucket_name
  s3_key_prefix                 = local.config_key_prefix
  s3_kms_key_arn                = module.cloudtrail.kms_key_arn
  include_global_resource_types = each.key == var.home_region
  delivery_frequency            = "TwentyFour_Hours"
  managed_rules                 = ["CLOUD_TRAIL_ENABLED", "MULTI_REGION_CLOUD_TRAIL_ENABLED", "CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED", "CLOUD_TRAIL_ENCRYPTION_ENABLED", "VPC_FLOW_LOGS_ENABLED", "EC2_EBS_ENCRYPTION_BY_DEFAULT", "ENCRYPTED_VOLUMES", "EIP_ATTACHED", "INCOMING_SSH_DISABLED", "VPC_DEFAULT_SECURITY_GROUP_CLOSED", "RESTRICTED_INCOMING_TRAFFIC"]
  # The tag the baseline-protection SCP recognises harden's rules by (provisioner/policies.py).
  rule_tags = { HardenGuardrail = var.name_prefix }
  # RESTRICTED_INCOMING_TRAFFIC takes at most five ports (blockedPort1..5): the first five of
  # network.admin_ports; harden verify's network.admin_ports checks them all.
  rule_parameters = {
    RESTRICTED_INCOMING_TRAFFIC = jsonencode({
      "blockedPort1" = "22"
      "blockedPort2" = "3389"
    })
  }
}

# -- flow_logs.all_vpcs: every VPC of every region, VPCs created since the last plan included --
module "flow_logs" {
  source   = "../modules/flow_logs"
  for_each = local.regions

  region                   = each.key
  name_prefix              = var.name_prefix
  tags                     = var.tags
  vpc_ids                  = lookup(var.flow_log_vpc_ids, each.key, [])
  traffic_type             = "ALL"
  destination_type         = "cloud-watch-logs"
  log_retention_days       = 365
  max_aggregation_interval = 600
  kms_deletion_window_days = 30
}

# -- ebs.default_encryption: on in every region, with a customer key ---------------------------
module "ebs_encryption" {
  source   = "../modules/ebs_encryption"
  for_each = local.regions

  region                   = each.key
  name_prefix              = var.name_prefix
  tags                     = var.tags
  kms_key_arn              = lookup(var.ebs_kms_key_arns, each.key, null)
  kms_deletion_window_days = 30
}

# -- alarms.*: a fleet CPU alarm per region, Elastic IP allocation detection; one topic, in the home
# region, that every other region reaches through the home region's event bus ------------------
module "alarms" {
  source   = "../modules/alarms"
  for_each = local.regions

  region                           = each.key
  home_region                      = var.home_region
  event_bus_role_arn               = aws_iam_role.event_forwarding.arn
  name_prefix                      = var.name_prefix
  tags                             = var.tags
  topic_name                       = "harden-security-alarms"
  subscriptions                    = var.alarm_subscriptions
  cpu_threshold                    = 80
  cpu_evaluation_periods           = 3
  cpu_period_seconds               = 300
  instance_ids                     = lookup(var.cpu_instance_ids, each.key, [])
  allocate_address_alarm_threshold = 1
  kms_deletion_window_days         = 30
  eip_pool_alarm_share             = 0.8
  # The metric filter reads the trail's log group, which lives in the home region only; the
  # EventBridge rule in every region catches allocations where they happen.
  cloudtrail_log_group_name = each.key == var.home_region ? module.cloudtrail.log_group_name : null
  # provisioner/policies.py alarm_topic_policy, with this account, Region and partition.
  topic_policy_json = jsonencode({
    "Version" = "2012-10-17"
    "Statement" = [
      {
        "Sid"       = "AllowOwnerManagement"
        "Effect"    = "Allow"
        "Principal" = { "AWS" = "arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root" }
        "Action"    = ["sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:AddPermission", "sns:RemovePermission", "sns:DeleteTopic", "sns:Subscribe", "sns:ListSubscriptionsByTopic"]
        "Resource"  = "arn:${data.aws_partition.current.partition}:sns:${each.key}:${local.account_id}:harden-security-alarms"
      },
      {
        "Sid"       = "AllowCloudWatchAlarmsOfThisModule"
        "Effect"    = "Allow"
        "Principal" = { "Service" = "cloudwatch.amazonaws.com" }
        "Action"    = "sns:Publish"
        "Resource"  = "arn:${data.aws_partition.current.partition}:sns:${each.key}:${local.account_id}:harden-security-alarms"
        "Condition" = { "StringEquals" = { "aws:SourceAccount" = "${local.account_id}" }, "ArnLike" = { "aws:SourceArn" = "arn:${data.aws_partition.current.partition}:cloudwatch:${each.key}:${local.account_id}:alarm:harden-*" } }
      },
      {
        "Sid"       = "AllowElasticIpEventRule"
        "Effect"    = "Allow"
        "Principal" = { "Service" = "events.amazonaws.com" }
        "Action"    = "sns:Publish"
        "Resource"  = "arn:${data.aws_partition.current.partition}:sns:${each.key}:${local.account_id}:harden-security-alarms"
        "Condition" = { "StringEquals" = { "aws:SourceAccount" = "${local.account_id}" }, "ArnEquals" = { "aws:SourceArn" = ["arn:${data.aws_partition.current.partition}:events:${each.key}:${local.account_id}:rule/harden-elastic-ip-api-calls", "arn:${data.aws_partition.current.partition}:events:${each.key}:${local.account_id}:rule/harden-alarm-state-changes"] } }
      },
      {
        "Sid"       = "DenyPublishByAnyoneButServices"
        "Effect"    = "Deny"
        "Principal" = "*"
        "Action"    = "sns:Publish"
        "Resource"  = "arn:${data.aws_partition.current.partition}:sns:${each.key}:${local.account_id}:harden-security-alarms"
        "Condition" = { "BoolIfExists" = { "aws:PrincipalIsAWSService" = "false" } }
      },
      {
        "Sid"       = "DenyPublishWithoutTls"
        "Effect"    = "Deny"
        "Principal" = "*"
        "Action"    = "sns:Publish"
        "Resource"  = "arn:${data.aws_partition.current.partition}:sns:${each.key}:${local.account_id}:harden-security-alarms"
        "Condition" = { "Bool" = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
}

# -- network.default_security_group: every VPC's default group adopted and emptied -------------
module "network" {
  source   = "../modules/network"
  for_each = local.regions

  region      = each.key
  name_prefix = var.name_prefix
  tags        = var.tags
}

# -- ec2.ami_currency: EC2 Allowed AMIs in every region (ami.allowed_owners is set) ------------
module "allowed_amis" {
  source   = "../modules/allowed_amis"
  for_each = local.regions

  region                 = each.key
  state                  = "audit-mode"
  image_providers        = ["amazon", "123456789012"]
  max_days_since_created = 90
}
