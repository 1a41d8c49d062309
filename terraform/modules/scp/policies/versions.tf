# Provider-free on purpose: the policy JSON can be evaluated (and measured against
# the 5,120-character SCP limit) with plain Terraform, without the AWS provider.
terraform {
  required_version = ">= 1.5"
}
