output "recorder_name" {
  description = "Name of the configuration recorder in this region."
  value       = aws_config_configuration_recorder.this.name
}

output "delivery_channel_name" {
  description = "Name of the delivery channel in this region."
  value       = aws_config_delivery_channel.this.name
}

output "rule_names" {
  description = "Names of the AWS managed Config rules deployed in this region, in the order of var.managed_rules."
  value       = [for rule in var.managed_rules : aws_config_config_rule.this[rule].name]
}

output "recorder_status_enabled" {
  description = "Whether the recorder is switched on (always true once applied)."
  value       = aws_config_configuration_recorder_status.this.is_enabled
}
