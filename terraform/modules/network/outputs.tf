output "default_security_group_ids" {
  description = "The adopted (and emptied) default security group of each covered VPC (map of VPC id to group id)."
  value       = { for vpc_id, group in aws_default_security_group.this : vpc_id => group.id }
}

output "vpc_ids" {
  description = "VPCs whose default security group this module keeps empty."
  value       = sort(local.vpc_ids)
}
