output "state" {
  description = "The Allowed AMIs state of the region (audit-mode or enabled)."
  value       = aws_ec2_allowed_images_settings.this.state
}
