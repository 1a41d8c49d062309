output "kms_key_arn" {
  description = "ARN of the default EBS key of this region: the key this module created, or the kms_key_arn passed in."
  value       = aws_ebs_default_kms_key.this.key_arn
}

output "kms_key_id" {
  description = "Key id of the default EBS key of this region (taken from the ARN when the key was passed in, so never null)."
  value       = local.kms_key_id
}

output "kms_alias_name" {
  description = "Alias of the key this module created (null when a key was passed in)."
  value       = try(aws_kms_alias.this[0].name, null)
}

output "encryption_by_default_enabled" {
  description = "Whether EBS encryption by default is on in this region."
  value       = aws_ebs_encryption_by_default.this.enabled
}
