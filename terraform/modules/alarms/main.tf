data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # One topic, in the home region: people confirm one subscription, not one per region. The
  # other regions send what they catch to the home region's default event bus (EventBridge
  # cross-region bus targets: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-region.html),
  # whose rules publish to the topic. The topic cannot move further out: a CloudWatch alarm
  # notifies only an SNS topic of its own region (PutMetricAlarm rejects another region's topic
  # with "Invalid region ... specified. Only <region> is supported"), and an EventBridge rule's
  # targets are in its own region except event buses and API destinations.
  is_home      = var.region == var.home_region
  home_bus_arn = "arn:${local.partition}:events:${var.home_region}:${local.account_id}:event-bus/default"

  topic_name  = coalesce(var.topic_name, "${var.name_prefix}-security-alarms")
  create_key  = local.is_home && var.kms_key_arn == null
  kms_key_arn = local.is_home ? (local.create_key ? aws_kms_key.topic[0].arn : var.kms_key_arn) : null
  topic_arn   = local.is_home ? aws_sns_topic.alarms[0].arn : null
  # Alarms of the home region notify the topic directly; elsewhere their state changes travel the
  # EventBridge route below (the same route as the Elastic IP events).
  alarm_actions = local.is_home ? [aws_sns_topic.alarms[0].arn] : []

  # Built from its parts (not from the topic resource) so the KMS key policy, which the
  # topic depends on, can name it without a dependency cycle.
  topic_arn_for_policy = "arn:${local.partition}:sns:${var.region}:${local.account_id}:${local.topic_name}"

  # Computed by harden (provisioner/address_events.py, where each call is explained, the one
  # definition verify judges them by) for the CloudTrail metric filter and the EventBridge rule,
  # so the two detections cannot drift apart: allocation, release and transfer, and every call
  # that moves an address (AssociateAddress and DisassociateAddress, AssignPrivateIpAddresses with
  # allowReassignment, AttachNetworkInterface, CreateNatGateway, the NAT gateway address calls).
  # Failed calls (errorCode set, e.g. an SCP denial) match too: an attempt by a principal outside
  # the allow-list is exactly what must be seen.
  address_event_pattern        = { "source" = ["aws.ec2"], "detail-type" = ["AWS API Call via CloudTrail"], "detail" = { "eventSource" = ["ec2.amazonaws.com"], "$or" = [{ "eventName" = ["AllocateAddress", "ReleaseAddress", "EnableAddressTransfer", "AcceptAddressTransfer", "DisableAddressTransfer", "AssociateAddress", "DisassociateAddress", "AttachNetworkInterface", "CreateNatGateway", "AssociateNatGatewayAddress", "DisassociateNatGatewayAddress"] }, { "eventName" = ["AssignPrivateIpAddresses"], "requestParameters" = { "allowReassignment" = [true] } }] } }
  address_event_filter_pattern = "{ ($.eventSource = \"ec2.amazonaws.com\") && (($.eventName = \"AllocateAddress\") || ($.eventName = \"ReleaseAddress\") || ($.eventName = \"EnableAddressTransfer\") || ($.eventName = \"AcceptAddressTransfer\") || ($.eventName = \"DisableAddressTransfer\") || ($.eventName = \"AssociateAddress\") || ($.eventName = \"DisassociateAddress\") || ($.eventName = \"AttachNetworkInterface\") || ($.eventName = \"CreateNatGateway\") || ($.eventName = \"AssociateNatGatewayAddress\") || ($.eventName = \"DisassociateNatGatewayAddress\") || (($.eventName = \"AssignPrivateIpAddresses\") && ($.requestParameters.allowReassignment IS TRUE))) }"

  create_metric_filter = var.cloudtrail_log_group_name != null
  metric_name          = "${var.name_prefix}-ElasticIpAddressApiCalls"
  event_rule_name      = "${var.name_prefix}-elastic-ip-api-calls"
  alarm_rule_name      = "${var.name_prefix}-alarm-state-changes"

  # CPU: one multi-time-series alarm per region on a Metrics Insights query, every instance a
  # contributor, so instances launched after the last apply are covered without a re-apply and
  # an Auto Scaling fleet does not change the plan (CloudWatch User Guide, "Create a CloudWatch
  # alarm based on a Metrics Insights query":
  # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Create_Metrics_Insights_Alarm.html).
  # That page asks a multi-time-series alarm's query for two clauses, GROUP BY and ORDER BY (its
  # per-resource example: ... GROUP BY DBInstanceIdentifier ORDER BY AVG() DESC). ORDER BY also
  # decides which 500 series a larger fleet returns: without it "you can't control which 500
  # matching metrics are returned"; with AVG() DESC they are the busiest instances
  # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-metrics-insights-limits.html).
  cpu_fleet_query = "SELECT AVG(CPUUtilization) FROM SCHEMA(\"AWS/EC2\", InstanceId) GROUP BY InstanceId ORDER BY AVG() DESC"
  # Metrics Insights has no sub-minute data: a 10 or 30 second period is evaluated per minute.
  cpu_fleet_period = max(60, var.cpu_period_seconds)
  # Limits of alarms on Metrics Insights queries ("Limits", CloudWatch User Guide:
  # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-limits.html): a query
  # evaluates at most 500 time series (beyond that the alarm evaluates PARTIAL_DATA), at most 100
  # contributors are reported in ALARM, 200 such alarms per region (this module creates one).
  metrics_insights_max_series = 500
  running_instance_ids        = var.cpu_alarms_enabled ? data.aws_instances.running[0].ids : []
  fleet_fits                  = length(local.running_instance_ids) <= local.metrics_insights_max_series
  # Own alarms: the instances listed, and every running one when the region has more than a
  # query evaluates (the check below says so in the plan).
  cpu_instance_ids = var.cpu_alarms_enabled ? toset(concat(
    var.instance_ids, local.fleet_fits ? [] : local.running_instance_ids,
  )) : toset([])
}

# ---------------------------------------------------------------------------
# Topic encryption key (only when the caller brings none)
# ---------------------------------------------------------------------------

data "aws_iam_policy_document" "topic_key" {
  #checkov:skip=CKV_AWS_109:This is a KMS key policy: Resource "*" means this key only, and kms:* goes to the account root only, which delegates key administration to IAM (AWS default key policy); without it the key is unmanageable.
  #checkov:skip=CKV_AWS_111:This is a KMS key policy: Resource "*" means this key only; write access is limited to the account root (delegation to IAM) and, for GenerateDataKey*/Decrypt, to CloudWatch alarms and EventBridge for this topic only (SNS encryption context).
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
  #
  # AWS's statement for CloudWatch alarms has no condition at all
  # (https://repost.aws/knowledge-center/cloudwatch-configure-alarm-sns); whether CloudWatch
  # sends aws:SourceAccount on the KMS calls SNS makes for it is documented nowhere, and a
  # statement conditioned on a key that is absent would silence every alarm without an error.
  # So, as for EventBridge below, the key is bound to this one topic by the encryption context
  # SNS puts on every data key (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html);
  # which alarms may publish is the topic policy's job (aws:SourceArn = this module's alarms).
  statement {
    sid       = "AllowCloudWatchAlarmsForThisTopicOnly"
    effect    = "Allow"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:sns:topicArn"
      values   = [local.topic_arn_for_policy]
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
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.topic_key[0].json
  tags                    = var.tags

  # Evidence and the keys that decrypt it: a plain `terraform destroy` (or a change that would
  # replace it) stops here. `harden render|plan|apply|bootstrap --allow-destroy` renders this
  # as false for that run, deliberately (docs/first-apply.md, "Rolling back").
  lifecycle {
    prevent_destroy = true
  }
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
  count = local.is_home ? 1 : 0

  region            = var.region
  name              = local.topic_name
  display_name      = "harden security alarms"
  kms_master_key_id = local.kms_key_arn
  tags              = var.tags
}

resource "aws_sns_topic_policy" "alarms" {
  count = local.is_home ? 1 : 0

  region = var.region
  arn    = aws_sns_topic.alarms[0].arn
  # Computed by harden (provisioner/policies.py alarm_topic_policy, the document remediate
  # attaches) and passed in by the root: only harden's alarms and the Elastic IP rule publish, and
  # an explicit Deny stops any other caller whatever its identity policy says.
  policy = var.topic_policy_json
}

resource "aws_sns_topic_subscription" "alarms" {
  for_each = local.is_home ? { for i, s in var.subscriptions : "${s.protocol}:${s.endpoint}" => s } : {}

  region                = var.region
  topic_arn             = aws_sns_topic.alarms[0].arn
  protocol              = each.value.protocol
  endpoint              = each.value.endpoint
  subscription_role_arn = each.value.subscription_role_arn
}

# ---------------------------------------------------------------------------
# CPU: one fleet alarm per region (Metrics Insights), own alarms for listed instances
# ---------------------------------------------------------------------------

# Read at every plan, only to know whether the fleet fits one query (and, when it does not, which
# instances get their own alarm); the fleet alarm itself does not depend on it.
data "aws_instances" "running" {
  count = var.cpu_alarms_enabled ? 1 : 0

  region = var.region

  filter {
    name   = "instance-state-name"
    values = ["running"]
  }
}

# A plan warning, not an error: above the limit the fleet alarm still evaluates 500 series and
# every running instance gets its own alarm as well, which follows the fleet only at each apply.
check "cpu_fleet_alarm_limits" {
  assert {
    condition     = local.fleet_fits
    error_message = "${length(local.running_instance_ids)} running instances in ${var.region}: more than the ${local.metrics_insights_max_series} time series a Metrics Insights alarm evaluates. Each running instance gets its own CPU alarm too (they follow the fleet only at each apply); split the fleet across accounts or regions to stay under the limit."
  }
}

resource "aws_cloudwatch_metric_alarm" "cpu_fleet" {
  count = var.cpu_alarms_enabled ? 1 : 0

  region            = var.region
  alarm_name        = "${var.name_prefix}-cpu-fleet"
  alarm_description = "Average CPUUtilization of any instance in ${var.region} >= ${var.cpu_threshold}% for ${var.cpu_evaluation_periods} x ${local.cpu_fleet_period}s; each instance is a contributor, new instances join without a re-apply (harden alarms.cpu). At most 100 instances are reported in ALARM at once."

  metric_query {
    id          = "cpu"
    label       = "CPUUtilization by InstanceId"
    expression  = local.cpu_fleet_query
    period      = local.cpu_fleet_period
    return_data = true
  }

  evaluation_periods  = var.cpu_evaluation_periods
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.cpu_threshold

  # A contributor exists only while it sends data (a stopped instance leaves the alarm instead of
  # paging); "missing" keeps an empty region visible as INSUFFICIENT_DATA without paging.
  treat_missing_data = "missing"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = var.tags

  lifecycle {
    precondition {
      # Alarms on Metrics Insights queries evaluate the latest 3 hours only (alarm-limits page).
      condition     = var.cpu_evaluation_periods * local.cpu_fleet_period <= 10800
      error_message = "cpu_evaluation_periods x the period must be at most 3 hours for a Metrics Insights alarm."
    }
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
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
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
  alarm_description = "Elastic IP allocate/release/transfer/move API calls (CloudTrail, all Regions) >= ${var.allocate_address_alarm_threshold} in 5 minutes (harden alarms.allocate_address)."

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
  alarm_actions   = local.alarm_actions
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
  watch_eip_pool = var.eip_pool_alarm_share != null
  # The provider lists a usage_metric whenever the API returns a UsageMetric object, empty or not
  # (flattenUsageMetric in internal/service/servicequotas/service_quota_data_source.go), so one
  # without a metric name counts as none: an alarm on an empty namespace and name fails the apply.
  eip_usage_metric = try(coalesce(data.aws_servicequotas_service_quota.elastic_ips[0].usage_metric[0].metric_name), null) == null ? null : data.aws_servicequotas_service_quota.elastic_ips[0].usage_metric[0]
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
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = var.tags
}

# ---------------------------------------------------------------------------
# Elastic IP API calls: EventBridge rule (every Region; CloudTrail delivers API-call
# events to EventBridge in the Region where the call was made)
# ---------------------------------------------------------------------------

resource "aws_cloudwatch_event_rule" "address_api_calls" {
  region      = var.region
  name        = local.event_rule_name
  description = local.is_home ? "Elastic IP allocate/release/transfer/move API calls of every region, to the topic (harden alarms.allocate_address)." : "Elastic IP allocate/release/transfer/move API calls in ${var.region}, to the home region's event bus (harden alarms.allocate_address)."
  state       = var.event_rule_enabled ? "ENABLED" : "DISABLED"

  event_pattern = jsonencode(local.address_event_pattern)

  tags = var.tags
}

# Home region: to the topic. The message is readable (who, what, where, result) instead of the
# raw CloudTrail record; it matches the calls of every region, forwarded ones included.
resource "aws_cloudwatch_event_target" "address_api_calls" {
  count = local.is_home ? 1 : 0

  region    = var.region
  rule      = aws_cloudwatch_event_rule.address_api_calls.name
  target_id = "security-alarms-topic"
  arn       = aws_sns_topic.alarms[0].arn

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
      interface    = "$.detail.requestParameters.networkInterfaceId"
      errorCode    = "$.detail.errorCode"
    }
    input_template = "\"harden: <eventName> by <principal> from <sourceIp> in account <account>, region <region> at <time>. publicIp=<publicIp> allocationId=<allocationId> requestAllocationId=<requestAlloc> networkInterfaceId=<interface> errorCode=<errorCode>\""
  }

  depends_on = [aws_sns_topic_policy.alarms]
}

# Other regions: both rules' events as they are, to the home region's default bus (an event bus in
# another region is the one cross-region target EventBridge has; it needs a role that may
# PutEvents there). The home region's rules match the original events.
resource "aws_cloudwatch_event_target" "to_home_bus" {
  for_each = local.is_home ? {} : {
    address_api_calls   = aws_cloudwatch_event_rule.address_api_calls.name
    alarm_state_changes = aws_cloudwatch_event_rule.alarm_state_changes.name
  }

  region    = var.region
  rule      = each.value
  target_id = "home-region-event-bus"
  arn       = local.home_bus_arn
  role_arn  = var.event_bus_role_arn

  lifecycle {
    precondition {
      condition     = var.event_bus_role_arn != null
      error_message = "event_bus_role_arn is required outside the home region: EventBridge needs a role to send to the home region's event bus."
    }
  }
}

# ---------------------------------------------------------------------------
# Alarm state changes of this baseline's alarms in the other regions reach the topic through the
# home bus (CloudWatch sends "CloudWatch Alarm State Change" and, for multi-time-series alarms,
# "CloudWatch Alarm Contributor State Change" events to EventBridge:
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html).
# ---------------------------------------------------------------------------

resource "aws_cloudwatch_event_rule" "alarm_state_changes" {
  region      = var.region
  name        = local.alarm_rule_name
  description = local.is_home ? "State changes of the ${var.name_prefix}-* alarms of the other regions, to the topic (harden alarms.*)." : "State changes of the ${var.name_prefix}-* alarms in ${var.region}, to the home region's event bus (harden alarms.*)."
  state       = var.event_rule_enabled ? "ENABLED" : "DISABLED"

  # The home region's own alarms notify the topic directly: its rule takes only forwarded events.
  event_pattern = jsonencode(merge({
    source        = ["aws.cloudwatch"]
    "detail-type" = ["CloudWatch Alarm State Change", "CloudWatch Alarm Contributor State Change"]
    detail = {
      alarmName = [{ prefix = "${var.name_prefix}-" }]
    }
  }, local.is_home ? { region = [{ "anything-but" = var.home_region }] } : {}))

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "alarm_state_changes" {
  count = local.is_home ? 1 : 0

  region    = var.region
  rule      = aws_cloudwatch_event_rule.alarm_state_changes.name
  target_id = "security-alarms-topic"
  arn       = aws_sns_topic.alarms[0].arn

  input_transformer {
    input_paths = {
      alarm  = "$.detail.alarmName"
      region = "$.region"
      state  = "$.detail.state.value"
      reason = "$.detail.state.reason"
      time   = "$.time"
    }
    input_template = "\"harden: alarm <alarm> in <region> is <state> at <time>: <reason>\""
  }

  depends_on = [aws_sns_topic_policy.alarms]
}
