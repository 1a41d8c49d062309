# scp.allocate_address and scp.baseline_protection: guardrails no account administrator can lift.
module "scp" {
  source = "../modules/scp"

  name_prefix                             = var.name_prefix
  tags                                    = var.tags
  target_ids                              = var.target_ids
  allocate_address_allowed_principal_arns = var.allocate_address_allowed_principal_arns
  allocate_address_allowed_regions        = var.allocate_address_allowed_regions
  protect_baseline                        = var.protect_baseline
  baseline_admin_principal_arns           = var.baseline_admin_principal_arns
}
