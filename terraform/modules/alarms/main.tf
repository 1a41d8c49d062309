data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  topic_name  = coalesce(var.topic_name, "${var.name_prefix}-security-alarms")
  create_key  = var.kms_key_arn == null
  kms_key_arn = local.create_key ? aws_kms_key.topic[0].arn : var.kms_key_arn

  # Built from its parts (not from the topic resource) so the KMS key policy, which the
  # topic depends on, can name it without a dependency cycle.
  topic_arn_for_policy = "arn:${local.partition}:sns:${var.region}:${local.account_id}:${local.topic_name}"

  # One list feeds both the CloudTrail metric filter and the EventBridge rule, so the
  # two detections cannot drift apart. Release and Associate are in on purpose: a
  # released address that DNS still points at can be re-allocated by someone else
  # (dangling DNS), and re-associating an address moves its traffic (hijack).
  address_event_names = [
    "AllocateAddress",
    "ReleaseAddress",
    "AssociateAddress",
    "EnableAddressTransfer",
    "AcceptAddressTransfer",
    "DisableAddressTransfer",
  ]

  # Failed calls (errorCode set, e.g. an SCP denial) match too: an attempt by a
  # principal outside the allow-list is exactly what must be seen.
  address_event_filter_pattern = "{ ($.eventSource = \"ec2.amazonaws.com\") && (($.eventName = \"AllocateAddress\") || ($.eventName = \"ReleaseAddress\") || ($.eventName = \"AssociateAddress\") || ($.eventName = \"EnableAddressTransfer\") || ($.eventName = \"AcceptAddressTransfer\") || ($.eventName = \"DisableAddressTransfer\")) }"

  create_metric_filter = var.cloudtrail_log_group_name != null
  metric_name          = "${var.name_prefix}-ElasticIpAddressApiCalls"
  event_rule_name      = "${var.name_prefix}-elastic-ip-api-calls"

  discover_instances = var.cpu_alarms_enabled && length(var.instance_ids) == 0
  cpu_instance_ids = var.cpu_alarms_enabled ? toset(
    local.discover_instances ? data.aws_instances.running[0].ids : var.instance_ids
  ) : toset([])
}

# ---------------------------------------------------------------------------
# Topic encryption key (only when the caller brings none)
# ---------------------------------------------------------------------------

data "aws_iam_policy_document" "topic_key" {
  #checkov:skip=CKV_AWS_109:This is a KMS key policy: Resource "*" means this key only, and kms:* goes to the account root only, which delegates key administration to IAM (AWS default key policy); without it the key is unmanageable.
  #checkov:skip=CKV_AWS_111:This is a KMS key policy: Resource "*" means this key only; write access is limited to the account root (delegation to IAM) and, for GenerateDataKey*/Decrypt, to CloudWatch of this account (aws:SourceAccount) and to EventBridge for this topic only (SNS encryption context).
  #checkov:skip=CKV_AWS_356:This is a KMS key policy: in a key policy Resource must be "*" and means this key only, so it cannot be narrowed further.
  count = local.create_key ? 1 : 0

  # Without the account-root statement the key becomes unmanageable (KMS locks out
  # everyone the policy does not name); IAM policies then decide who may administer it.
  statement {
    sid       = "EnableAccountAdministration"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # CloudWatch alarms and EventBridge publish to an encrypted topic only if they may
  # use its key; the AWS managed aws/sns key cannot grant that, hence this key.
  statement {
    sid       = "AllowCloudWatchAlarmsOfThisAccount"
    effect    = "Allow"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  # No aws:SourceAccount / aws:SourceArn here: EventBridge does not send them on the KMS calls
  # it makes to deliver to an encrypted topic, and a statement conditioned on them would drop
  # every Elastic IP notification without an error anywhere. The confused-deputy guard is the
  # topic policy (only this rule's ARN may publish); the key is bound to this one topic by the
  # encryption context SNS puts on every data key.
  statement {
    sid       = "AllowEventBridgeForThisTopicOnly"
    effect    = "Allow"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:sns:topicArn"
      values   = [local.topic_arn_for_policy]
    }
  }
}

resource "aws_kms_key" "topic" {
  count = local.create_key ? 1 : 0

  region                  = var.region
  description             = "Encrypts the ${local.topic_name} SNS topic (harden security alarms) in ${var.region}"
  key_usage               = "ENCRYPT_DECRYPT"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.topic_key[0].json
  tags                    = var.tags
}

resource "aws_kms_alias" "topic" {
  count = local.create_key ? 1 : 0

  region        = var.region
  name          = "alias/${local.topic_name}"
  target_key_id = aws_kms_key.topic[0].key_id
}

# ---------------------------------------------------------------------------
# Alarm topic
# ---------------------------------------------------------------------------

resource "aws_sns_topic" "alarms" {
  region            = var.region
  name              = local.topic_name
  display_name      = "harden security alarms"
  kms_master_key_id = local.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "topic" {
  # The owner's usual management rights, minus Publish: only the two services below
  # publish, so a message on this topic always comes from an alarm or the rule.
  statement {
    sid    = "AllowOwnerManagement"
    effect = "Allow"
    actions = [
      "sns:GetTopicAttributes",
      "sns:SetTopicAttributes",
      "sns:AddPermission",
      "sns:RemovePermission",
      "sns:DeleteTopic",
      "sns:Subscribe",
      "sns:ListSubscriptionsByTopic",
    ]
    resources = [aws_sns_topic.alarms.arn]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "AllowCloudWatchAlarmsOfThisModule"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:cloudwatch:${var.region}:${local.account_id}:alarm:${var.name_prefix}-*"]
    }
  }

  statement {
    sid       = "AllowElasticIpEventRule"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]

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
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.address_api_calls.arn]
    }
  }

  statement {
    sid       = "DenyPublishWithoutTls"
    effect    = "Deny"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  region = var.region
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.topic.json
}

resource "aws_sns_topic_subscription" "alarms" {
  for_each = { for i, s in var.subscriptions : "${s.protocol}:${s.endpoint}" => s }

  region                = var.region
  topic_arn             = aws_sns_topic.alarms.arn
  protocol              = each.value.protocol
  endpoint              = each.value.endpoint
  subscription_role_arn = each.value.subscription_role_arn
}

# ---------------------------------------------------------------------------
# CPU alarm per instance
# ---------------------------------------------------------------------------

# Read at every plan, so a re-plan adds alarms for new instances and drops those of
# instances that are gone.
data "aws_instances" "running" {
  count = local.discover_instances ? 1 : 0

  region = var.region

  filter {
    name   = "instance-state-name"
    values = ["running"]
  }
}

resource "aws_cloudwatch_metric_alarm" "cpu" {
  for_each = local.cpu_instance_ids

  region            = var.region
  alarm_name        = "${var.name_prefix}-cpu-${each.value}"
  alarm_description = "Average CPUUtilization of ${each.value} >= ${var.cpu_threshold}% for ${var.cpu_evaluation_periods} x ${var.cpu_period_seconds}s (harden alarms.cpu)."

  namespace   = "AWS/EC2"
  metric_name = "CPUUtilization"
  dimensions = {
    InstanceId = each.value
  }
  statistic           = "Average"
  period              = var.cpu_period_seconds
  evaluation_periods  = var.cpu_evaluation_periods
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.cpu_threshold

  # "missing": an instance that stops sends no data and the alarm goes to
  # INSUFFICIENT_DATA, which is visible but pages nobody. "breaching" would page for
  # every stopped instance; "notBreaching" would hide that monitoring went silent.
  treat_missing_data = "missing"

  actions_enabled = true
  alarm_actions   = [aws_sns_topic.alarms.arn]
  ok_actions      = [aws_sns_topic.alarms.arn]
  tags            = var.tags
}

# ---------------------------------------------------------------------------
# Elastic IP API calls: CloudTrail metric filter + alarm (home Region only)
# ---------------------------------------------------------------------------

resource "aws_cloudwatch_log_metric_filter" "address_api_calls" {
  count = local.create_metric_filter ? 1 : 0

  region         = var.region
  name           = "${var.name_prefix}-elastic-ip-api-calls"
  log_group_name = var.cloudtrail_log_group_name
  pattern        = local.address_event_filter_pattern

  metric_transformation {
    name      = local.metric_name
    namespace = var.metric_namespace
    value     = "1"
    unit      = "Count"
  }
}

resource "aws_cloudwatch_metric_alarm" "allocate_address" {
  count = local.create_metric_filter ? 1 : 0

  region            = var.region
  alarm_name        = "${var.name_prefix}-elastic-ip-api-calls"
  alarm_description = "Elastic IP allocate/release/associate/transfer API calls (CloudTrail, all Regions) >= ${var.allocate_address_alarm_threshold} in 5 minutes (harden alarms.allocate_address)."

  namespace           = var.metric_namespace
  metric_name         = aws_cloudwatch_log_metric_filter.address_api_calls[0].metric_transformation[0].name
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.allocate_address_alarm_threshold

  # The metric only has data points when a matching call happens: no data = no calls.
  treat_missing_data = "notBreaching"

  actions_enabled = true
  alarm_actions   = [aws_sns_topic.alarms.arn]
  tags            = var.tags
}

# ---------------------------------------------------------------------------
# eip.pool: allocated Elastic IPs against the Region's quota ("EC2-VPC Elastic IPs")
# ---------------------------------------------------------------------------
# SERVICE_QUOTA() metric math needs an AWS/Usage metric for the quota. Service Quotas returns
# a UsageMetric only for quotas that have one
# (https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_MetricInfo.html), and
# Elastic IPs are not among the usage metrics AWS documents (CloudWatch's AWS/Usage page,
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch-Usage-Metrics.html,
# and EC2's, which cover running instances' vCPUs). So the alarm is declared only where the
# quota reports a usage metric at plan time; where it does not, the pool is watched by the
# allocation-rate alarm above and by `harden verify` (eip.pool: DescribeAddresses against
# GetServiceQuota).

data "aws_servicequotas_service_quota" "elastic_ips" {
  count = local.watch_eip_pool ? 1 : 0

  region       = var.region
  service_code = "ec2"
  quota_code   = "L-0263D0A3"
}

locals {
  watch_eip_pool   = var.eip_pool_alarm_share != null
  eip_usage_metric = try(data.aws_servicequotas_service_quota.elastic_ips[0].usage_metric[0], null)
  # Service Quotas names the dimensions in lower case (class, resource, ...); CloudWatch in title case.
  eip_usage_dimensions = local.eip_usage_metric == null ? {} : {
    for key, value in try(local.eip_usage_metric.metric_dimensions[0], {}) : title(key) => value if value != ""
  }
}

resource "aws_cloudwatch_metric_alarm" "eip_pool" {
  count = local.eip_usage_metric == null ? 0 : 1

  region            = var.region
  alarm_name        = "${var.name_prefix}-elastic-ip-pool-${var.region}"
  alarm_description = "Elastic IPs allocated in ${var.region} >= ${var.eip_pool_alarm_share * 100}% of the Region's quota (harden eip.pool)."

  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.eip_pool_alarm_share * 100
  treat_missing_data  = "missing"

  metric_query {
    id          = "usage"
    return_data = false

    metric {
      namespace   = local.eip_usage_metric.metric_namespace
      metric_name = local.eip_usage_metric.metric_name
      dimensions  = local.eip_usage_dimensions
      stat        = local.eip_usage_metric.metric_statistic_recommendation
      period      = 300
    }
  }

  metric_query {
    id          = "pool_share"
    expression  = "(usage / SERVICE_QUOTA(usage)) * 100"
    label       = "Elastic IPs allocated, % of quota"
    return_data = true
  }

  actions_enabled = true
  alarm_actions   = [aws_sns_topic.alarms.arn]
  ok_actions      = [aws_sns_topic.alarms.arn]
  tags            = var.tags
}

# ---------------------------------------------------------------------------
# Elastic IP API calls: EventBridge rule (every Region; CloudTrail delivers API-call
# events to EventBridge in the Region where the call was made)
# ---------------------------------------------------------------------------

resource "aws_cloudwatch_event_rule" "address_api_calls" {
  region      = var.region
  name        = local.event_rule_name
  description = "Elastic IP allocate/release/associate/transfer API calls in ${var.region} (harden alarms.allocate_address)."
  state       = var.event_rule_enabled ? "ENABLED" : "DISABLED"

  event_pattern = jsonencode({
    source        = ["aws.ec2"]
    "detail-type" = ["AWS API Call via CloudTrail"]
    detail = {
      eventSource = ["ec2.amazonaws.com"]
      eventName   = local.address_event_names
    }
  })

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "address_api_calls" {
  region    = var.region
  rule      = aws_cloudwatch_event_rule.address_api_calls.name
  target_id = "security-alarms-topic"
  arn       = aws_sns_topic.alarms.arn

  # A readable message (who, what, where, result) instead of the raw CloudTrail record.
  input_transformer {
    input_paths = {
      account      = "$.account"
      region       = "$.region"
      time         = "$.time"
      eventName    = "$.detail.eventName"
      principal    = "$.detail.userIdentity.arn"
      sourceIp     = "$.detail.sourceIPAddress"
      publicIp     = "$.detail.responseElements.publicIp"
      allocationId = "$.detail.responseElements.allocationId"
      requestAlloc = "$.detail.requestParameters.allocationId"
      errorCode    = "$.detail.errorCode"
    }
    input_template = "\"harden: <eventName> by <principal> from <sourceIp> in account <account>, region <region> at <time>. publicIp=<publicIp> allocationId=<allocationId> requestAllocationId=<requestAlloc> errorCode=<errorCode>\""
  }

  depends_on = [aws_sns_topic_policy.alarms]
}
