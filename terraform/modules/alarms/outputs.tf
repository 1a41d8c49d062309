output "topic_arn" {
  description = "ARN of the SNS topic every alarm and the Elastic IP event rule notify."
  value       = aws_sns_topic.alarms.arn
}

output "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the topic (the created key, or the one passed in)."
  value       = local.kms_key_arn
}

output "cpu_alarm_names" {
  description = "CPU alarm name per instance id."
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
