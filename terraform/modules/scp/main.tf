data "aws_partition" "current" {}

# The policy JSON is computed in a provider-free sub-module so it can be evaluated and
# measured (SCP size limit) with plain Terraform, without the AWS provider.
module "policies" {
  source = "./policies"

  name_prefix                             = var.name_prefix
  partition                               = data.aws_partition.current.partition
  allocate_address_allowed_principal_arns = var.allocate_address_allowed_principal_arns
  allocate_address_allowed_regions        = var.allocate_address_allowed_regions
  baseline_admin_principal_arns           = var.baseline_admin_principal_arns
  protected_trail_arn_pattern             = var.protected_trail_arn_pattern
  protected_log_group_name_pattern        = var.protected_log_group_name_pattern
}

locals {
  # AWS counts an SCP's characters without whitespace; jsonencode output has none.
  scp_max_characters = 5120
}

resource "aws_organizations_policy" "allocate_address" {
  name        = "${var.name_prefix}-deny-eip-allocation"
  description = "harden scp.allocate_address: deny Elastic IP allocation and address transfer outside the approved principals and Regions."
  type        = "SERVICE_CONTROL_POLICY"
  content     = module.policies.allocate_address_policy_json
  tags        = var.tags

  lifecycle {
    precondition {
      condition     = length(module.policies.allocate_address_policy_json) <= local.scp_max_characters
      error_message = "The Elastic IP allocation SCP exceeds AWS's 5,120-character limit: shorten allocate_address_allowed_principal_arns (use a wildcard in the role name)."
    }
  }
}

resource "aws_organizations_policy" "baseline_protection" {
  count = var.protect_baseline ? 1 : 0

  name        = "${var.name_prefix}-protect-baseline"
  description = "harden scp.baseline_protection: deny turning off CloudTrail, Config, flow logs, EBS default encryption and the harden detections, except for baseline admins."
  type        = "SERVICE_CONTROL_POLICY"
  content     = module.policies.baseline_protection_policy_json
  tags        = var.tags

  lifecycle {
    precondition {
      condition     = length(module.policies.baseline_protection_policy_json) <= local.scp_max_characters
      error_message = "The baseline protection SCP exceeds AWS's 5,120-character limit: shorten baseline_admin_principal_arns (use a wildcard in the role name)."
    }
  }
}

resource "aws_organizations_policy_attachment" "allocate_address" {
  for_each = toset(var.target_ids)

  policy_id = aws_organizations_policy.allocate_address.id
  target_id = each.value
}

resource "aws_organizations_policy_attachment" "baseline_protection" {
  for_each = var.protect_baseline ? toset(var.target_ids) : toset([])

  policy_id = aws_organizations_policy.baseline_protection[0].id
  target_id = each.value
}
