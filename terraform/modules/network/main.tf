# network.default_security_group: every VPC's default security group, adopted and emptied.
#
# aws_default_security_group does not create a group: it adopts the VPC's existing default group
# and, on its first apply, removes every ingress and egress rule it holds, then keeps it empty
# (a rule added later by hand shows as drift). Declaring no ingress/egress block is the point.
# https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/default_security_group
#
# network.admin_ports has no declaration here: the groups that open ports belong to the
# applications that own them; harden verifies them and revokes the offending rules.

data "aws_caller_identity" "current" {}

# Read at every plan, like the flow logs: a VPC created since the last apply is covered next run.
# Only the VPCs this account owns: a VPC shared with it (VPC sharing, AWS RAM) is listed by
# DescribeVpcs too, but a participant "cannot create, delete, or describe flow logs for a shared VPC
# subnet" and cannot modify the owner's resources (VPC User Guide, "Responsibilities and permissions
# for owners and participants": https://docs.aws.amazon.com/vpc/latest/userguide/vpc-share-limitations.html),
# so declaring them fails the apply in every participant account. The owner's baseline covers them.
data "aws_vpcs" "all" {
  count = length(var.vpc_ids) == 0 ? 1 : 0

  region = var.region

  filter {
    name   = "owner-id"
    values = [data.aws_caller_identity.current.account_id]
  }
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
