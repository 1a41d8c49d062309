output "trail_arn" {
  description = "ARN of the trail."
  value       = aws_cloudtrail.this.arn
}

output "trail_name" {
  description = "Name of the trail."
  value       = aws_cloudtrail.this.name
}

output "trail_home_region" {
  description = "Region the trail was created in (its home region)."
  value       = aws_cloudtrail.this.home_region
}

output "bucket_name" {
  description = "Name of the log bucket (CloudTrail, AWS Config and VPC flow logs deliver to it)."
  value       = aws_s3_bucket.this.id
  # Consumers (AWS Config delivery channels, S3 flow logs) are checked against the bucket policy
  # when they are created: hand the bucket out only once its policy is in place.
  depends_on = [aws_s3_bucket_policy.this]
}

output "bucket_arn" {
  description = "ARN of the log bucket."
  value       = aws_s3_bucket.this.arn
  depends_on  = [aws_s3_bucket_policy.this]
}

output "kms_key_arn" {
  description = "ARN of the customer managed KMS key that encrypts the trail, its log group and the bucket."
  value       = aws_kms_key.this.arn
}

output "kms_key_id" {
  description = "Key id of the customer managed KMS key."
  value       = aws_kms_key.this.key_id
}

output "log_group_name" {
  description = "Name of the CloudWatch Logs group the trail delivers to."
  value       = aws_cloudwatch_log_group.this.name
}

output "log_group_arn" {
  description = "ARN of the CloudWatch Logs group the trail delivers to (without the :* suffix)."
  value       = aws_cloudwatch_log_group.this.arn
}

output "cloudwatch_logs_role_arn" {
  description = "ARN of the IAM role CloudTrail assumes to deliver to the log group."
  value       = aws_iam_role.cloudwatch_logs.arn
}
