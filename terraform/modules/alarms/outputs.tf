output "topic_arn" {
  description = "ARN of the SNS topic every alarm and event rule of the baseline ends at; null outside the home region (events travel there)."
  value       = local.topic_arn
}

output "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the topic (the created key, or the one passed in); null outside the home region."
  value       = local.kms_key_arn
}

output "cpu_fleet_alarm_name" {
  description = "Name of the region's fleet CPU alarm (Metrics Insights, one contributor per instance); null when CPU alarms are off."
  value       = one(aws_cloudwatch_metric_alarm.cpu_fleet[*].alarm_name)
}

output "cpu_alarm_names" {
  description = "Own CPU alarm name per instance id (the listed instances, and all running ones above the fleet alarm's limit)."
  value       = { for id, alarm in aws_cloudwatch_metric_alarm.cpu : id => alarm.alarm_name }
}

output "allocate_address_alarm_name" {
  description = "Name of the alarm on the Elastic IP API-call metric; null where no CloudTrail log group was given."
  value       = one(aws_cloudwatch_metric_alarm.allocate_address[*].alarm_name)
}

output "metric_filter_name" {
  description = "Name of the CloudTrail log metric filter for Elastic IP API calls; null where no CloudTrail log group was given."
  value       = one(aws_cloudwatch_log_metric_filter.address_api_calls[*].name)
}

output "metric_name" {
  description = "Name of the metric (in metric_namespace) the metric filter publishes; null where no CloudTrail log group was given."
  value       = local.create_metric_filter ? local.metric_name : null
}

output "event_rule_arn" {
  description = "ARN of the EventBridge rule that forwards Elastic IP API calls to the topic."
  value       = aws_cloudwatch_event_rule.address_api_calls.arn
}

output "event_rule_name" {
  description = "Name of the EventBridge rule that forwards Elastic IP API calls to the topic."
  value       = aws_cloudwatch_event_rule.address_api_calls.name
}

output "alarm_rule_name" {
  description = "Name of the EventBridge rule that carries alarm state changes to the topic (home region) or to the home region's bus."
  value       = aws_cloudwatch_event_rule.alarm_state_changes.name
}
