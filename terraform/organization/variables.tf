# Defaults come from harden.toml; a terraform.tfvars can still override them.

variable "home_region" {
  description = "Region the Organizations API is called from (Organizations itself is global)."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", var.home_region))
    error_message = "home_region must be an AWS region name such as eu-west-1."
  }
}

variable "name_prefix" {
  description = "Prefix of every name harden creates."
  type        = string
  default     = "harden"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,19}$", var.name_prefix))
    error_message = "name_prefix must be 1-20 lowercase letters, digits or '-'."
  }
}

variable "tags" {
  description = "Tags on the policies."
  type        = map(string)
  default     = { "ManagedBy" = "harden", "Owner" = "platform-security", "CostCenter" = "sec-001" }
}

variable "target_ids" {
  description = "Roots, OUs or accounts the SCPs are attached to."
  type        = list(string)
  default     = ["ou-ab12-cdef3456"]
}

variable "protect_baseline" {
  description = "Attach the SCP that denies turning the baseline off (stopping the trail, deleting flow logs, ...). Its document is written by harden render from harden.toml."
  type        = bool
  default     = true
}
