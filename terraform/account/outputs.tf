output "regions" {
  description = "Regions the baseline covers."
  value       = sort(tolist(local.regions))
}

output "trail_arn" {
  description = "ARN of the multi-region trail."
  value       = module.cloudtrail.trail_arn
}

output "log_bucket_name" {
  description = "Bucket that receives CloudTrail, AWS Config and (when so configured) flow logs."
  value       = module.cloudtrail.bucket_name
}

output "log_kms_key_arn" {
  description = "Customer key encrypting the trail, its bucket and its log group."
  value       = module.cloudtrail.kms_key_arn
}

output "flow_log_ids" {
  description = "Per region, the flow log id of each VPC."
  value       = { for region, m in module.flow_logs : region => m.flow_log_ids }
}

output "ebs_kms_key_arns" {
  description = "Per region, the default EBS encryption key."
  value       = { for region, m in module.ebs_encryption : region => m.kms_key_arn }
}

output "alarm_topic_arn" {
  description = "The one SNS topic (home region) every security alarm and event of every region reaches: subscribe here."
  value       = module.alarms[var.home_region].topic_arn
}

output "config_recorder_names" {
  description = "Per region, the AWS Config recorder."
  value       = { for region, m in module.config : region => m.recorder_name }
}

output "default_security_group_ids" {
  description = "Per region, the emptied default security group of each VPC."
  value       = { for region, m in module.network : region => m.default_security_group_ids }
}
