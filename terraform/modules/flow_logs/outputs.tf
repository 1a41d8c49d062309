output "flow_log_ids" {
  description = "Flow log id of each covered VPC (map of VPC id to flow log id)."
  value       = { for vpc_id, flow_log in aws_flow_log.this : vpc_id => flow_log.id }
}

output "vpc_ids" {
  description = "VPCs covered by a flow log in this region (every VPC of the region unless vpc_ids narrowed it)."
  value       = sort(local.vpc_ids)
}

output "log_group_name" {
  description = "Name of the CloudWatch Logs group receiving the flow logs (null when the destination is S3)."
  value       = try(aws_cloudwatch_log_group.this[0].name, null)
}

output "log_group_arn" {
  description = "ARN of the CloudWatch Logs group receiving the flow logs (null when the destination is S3)."
  value       = try(aws_cloudwatch_log_group.this[0].arn, null)
}

output "iam_role_arn" {
  description = "ARN of the IAM role VPC Flow Logs assumes to write to the log group (null when the destination is S3)."
  value       = try(aws_iam_role.this[0].arn, null)
}

output "kms_key_arn" {
  description = "ARN of the KMS key this module created for the log group (null when a key was passed in or the destination is S3)."
  value       = try(aws_kms_key.this[0].arn, null)
}

output "log_destination" {
  description = "Destination every flow log of this region delivers to (log group ARN, or bucket ARN with folder)."
  value       = local.to_cloudwatch ? try(aws_cloudwatch_log_group.this[0].arn, null) : local.s3_destination
}
