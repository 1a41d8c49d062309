output "allocate_address_policy_id" {
  description = "Id of the SCP that denies Elastic IP allocation outside the allow-list."
  value       = aws_organizations_policy.allocate_address.id
}

output "allocate_address_policy_json" {
  description = "Content (JSON) of the Elastic IP allocation SCP, as passed in."
  value       = var.allocate_address_policy_json
}

output "baseline_protection_policy_id" {
  description = "Id of the baseline protection SCP; null when protect_baseline is false."
  value       = one(aws_organizations_policy.baseline_protection[*].id)
}

output "baseline_protection_policy_json" {
  description = "Content (JSON) of the baseline protection SCP, as passed in (not applied when protect_baseline is false)."
  value       = var.baseline_protection_policy_json
}

output "attachment_ids" {
  description = "Attachment id per \"<policy>/<target id>\" (policy = allocate_address, baseline_protection or an overflow policy's name)."
  value = merge(
    { for t, a in aws_organizations_policy_attachment.allocate_address : "allocate_address/${t}" => a.id },
    { for t, a in aws_organizations_policy_attachment.baseline_protection : "baseline_protection/${t}" => a.id },
    { for k, a in aws_organizations_policy_attachment.overflow : k => a.id },
  )
}

output "overflow_policy_ids" {
  description = "Id of each overflow SCP, by name (empty when every guardrail fits one policy)."
  value       = { for name, p in aws_organizations_policy.overflow : name => p.id }
}
