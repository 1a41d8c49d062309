# network.default_security_group: every VPC's default security group, adopted and emptied.
#
# aws_default_security_group does not create a group: it adopts the VPC's existing default group
# and, on its first apply, removes every ingress and egress rule it holds, then keeps it empty
# (a rule added later by hand shows as drift). Declaring no ingress/egress block is the point.
# https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/default_security_group
#
# network.admin_ports has no declaration here: the groups that open ports belong to the
# applications that own them; harden verifies them and revokes the offending rules.

# Read at every plan, like the flow logs: a VPC created since the last apply is covered next run.
data "aws_vpcs" "all" {
  count = length(var.vpc_ids) == 0 ? 1 : 0

  region = var.region
}

locals {
  vpc_ids = length(var.vpc_ids) > 0 ? var.vpc_ids : data.aws_vpcs.all[0].ids
}

resource "aws_default_security_group" "this" {
  for_each = toset(local.vpc_ids)

  region = var.region
  vpc_id = each.value

  tags = merge(var.tags, { Name = "${var.name_prefix}-default-closed" })
}
