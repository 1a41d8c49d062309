# jsonencode writes minified JSON, which is what AWS counts against the SCP size limit.

output "allocate_address_policy_json" {
  description = "SCP JSON that denies Elastic IP allocation and address transfer outside the principal (and Region) allow-list."
  value       = jsonencode(local.allocate_address_policy)
}

output "baseline_protection_policy_json" {
  description = "SCP JSON that denies turning off CloudTrail, Config, flow logs, EBS default encryption and the harden detections, except for the baseline admins."
  value       = jsonencode(local.baseline_protection_policy)
}
