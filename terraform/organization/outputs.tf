output "allocate_address_policy_id" {
  description = "Id of the SCP that limits ec2:AllocateAddress and address transfers."
  value       = module.scp.allocate_address_policy_id
}

output "baseline_protection_policy_id" {
  description = "Id of the SCP that protects the baseline (null when protect_baseline is false)."
  value       = module.scp.baseline_protection_policy_id
}
