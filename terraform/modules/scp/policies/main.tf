locals {
  eip_allocation_actions = [
    "ec2:AllocateAddress",
    "ec2:EnableAddressTransfer",
    "ec2:AcceptAddressTransfer",
  ]

  allowed_principals = distinct(var.allocate_address_allowed_principal_arns)
  allowed_regions    = distinct(var.allocate_address_allowed_regions)
  baseline_admins    = distinct(var.baseline_admin_principal_arns)

  # An empty allow-list leaves the statement without a condition: nobody may allocate.
  # (A Condition with an empty value list would not be valid policy JSON.)
  allow_list_condition = {
    for k, v in { Condition = { ArnNotLike = { "aws:PrincipalArn" = local.allowed_principals } } } :
    k => v if length(local.allowed_principals) > 0
  }

  allocate_address_policy = {
    Version = "2012-10-17"
    Statement = concat(
      [merge({
        Sid      = "DenyEipAllocationOutsideAllowList"
        Effect   = "Deny"
        Action   = local.eip_allocation_actions
        Resource = "*"
      }, local.allow_list_condition)],
      # Applies to allow-listed principals too: approved callers, approved Regions only.
      length(local.allowed_regions) == 0 ? [] : [{
        Sid       = "DenyEipAllocationOutsideAllowedRegions"
        Effect    = "Deny"
        Action    = local.eip_allocation_actions
        Resource  = "*"
        Condition = { StringNotEquals = { "aws:RequestedRegion" = local.allowed_regions } }
      }],
    )
  }

  # ---------------------------------------------------------------------------
  # Baseline protection
  # ---------------------------------------------------------------------------

  admin_condition = {
    for k, v in { Condition = { ArnNotLike = { "aws:PrincipalArn" = local.baseline_admins } } } :
    k => v if length(local.baseline_admins) > 0
  }

  protect_all_trails = var.protected_trail_arn_pattern == "*"
  log_group_pattern  = coalesce(var.protected_log_group_name_pattern, "/aws/cloudtrail/${var.name_prefix}*")

  trail_actions = [
    "cloudtrail:StopLogging",
    "cloudtrail:DeleteTrail",
    "cloudtrail:UpdateTrail",
    "cloudtrail:PutEventSelectors",
  ]

  # Account-level settings: their resource is "*" (or the account's single recorder and
  # channel). The Put* calls are in because a recorder that records nothing, or a
  # channel that delivers elsewhere, switches Config off as surely as Stop/Delete does;
  # baseline admins keep them to manage Config.
  account_setting_actions = [
    "config:StopConfigurationRecorder",
    "config:DeleteConfigurationRecorder",
    "config:PutConfigurationRecorder",
    "config:DeleteDeliveryChannel",
    "config:PutDeliveryChannel",
    "ec2:DeleteFlowLogs",
    "ec2:DisableEbsEncryptionByDefault",
    "ec2:ModifyEbsDefaultKmsKeyId",
  ]

  # Deleting, disabling or rewriting the harden detections makes them go silent just
  # the same, so the modify calls are denied with the deletes.
  detection_actions = [
    "cloudwatch:DeleteAlarms",
    "cloudwatch:DisableAlarmActions",
    "cloudwatch:PutMetricAlarm",
    "events:DeleteRule",
    "events:DisableRule",
    "events:PutRule",
    "events:RemoveTargets",
    "events:PutTargets",
    "sns:DeleteTopic",
    "sns:SetTopicAttributes",
    "logs:DeleteMetricFilter",
    "logs:PutMetricFilter",
  ]

  # Every pattern names its own service, so an action never matches another
  # service's resource in the shared Resource list.
  detection_resources = [
    "arn:${var.partition}:cloudwatch:*:*:alarm:${var.name_prefix}-*",
    "arn:${var.partition}:events:*:*:rule/${var.name_prefix}-*",
    "arn:${var.partition}:sns:*:*:${var.name_prefix}-*",
    "arn:${var.partition}:logs:*:*:log-group:${local.log_group_pattern}",
    "arn:${var.partition}:logs:*:*:log-group:${local.log_group_pattern}:*",
  ]

  baseline_protection_policy = {
    Version = "2012-10-17"
    Statement = [
      merge({
        Sid      = "DenyBaselineSettingsChanges"
        Effect   = "Deny"
        Action   = concat(local.account_setting_actions, local.protect_all_trails ? local.trail_actions : [])
        Resource = "*"
      }, local.admin_condition),
      merge({
        Sid      = "DenyHardenDetectionChanges"
        Effect   = "Deny"
        Action   = concat(local.protect_all_trails ? [] : local.trail_actions, local.detection_actions)
        Resource = concat(local.protect_all_trails ? [] : [var.protected_trail_arn_pattern], local.detection_resources)
      }, local.admin_condition),
    ]
  }
}
