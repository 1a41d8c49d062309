variable "name_prefix" {
  description = "Prefix for the policy names."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9-]{1,32}$", var.name_prefix))
    error_message = "name_prefix must be 1-32 characters of letters, digits and hyphens."
  }
}

variable "tags" {
  description = "Tags applied to every taggable resource (the policies)."
  type        = map(string)
  default     = {}
}

variable "target_ids" {
  description = "Organization root (r-...), organizational units (ou-...-...) or 12-digit account ids each policy is attached to."
  type        = list(string)

  validation {
    condition = alltrue([
      for t in var.target_ids :
      can(regex("^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|[0-9]{12})$", t))
    ])
    error_message = "Each target id must be an organization root (r-xxxx), an OU (ou-xxxx-xxxxxxxx) or a 12-digit account id."
  }

  validation {
    condition     = length(distinct(var.target_ids)) == length(var.target_ids)
    error_message = "target_ids must not contain duplicates."
  }
}

variable "protect_baseline" {
  description = "Create and attach the SCP that denies turning the baseline off (needs baseline_protection_policy_json)."
  type        = bool
  default     = true
  nullable    = false
}

# AWS counts an SCP's characters without whitespace: pass minified JSON, as jsonencode() writes it.

variable "allocate_address_policy_json" {
  description = "SCP document (minified JSON, e.g. jsonencode() of a literal) that denies Elastic IP allocation and address transfer outside the approved principals and Regions."
  type        = string
  nullable    = false

  validation {
    condition     = can(jsondecode(var.allocate_address_policy_json).Statement)
    error_message = "allocate_address_policy_json must be a JSON policy document (an object with a Statement)."
  }

  validation {
    condition     = length(var.allocate_address_policy_json) <= 5120
    error_message = "allocate_address_policy_json exceeds AWS's 5,120-character SCP limit: shorten the principal allow-list (a wildcard in a role name covers several roles)."
  }
}

variable "baseline_protection_policy_json" {
  description = "SCP document (minified JSON) that denies turning the baseline off, except for the baseline admins. Required when protect_baseline is true."
  type        = string
  default     = null

  validation {
    condition     = var.baseline_protection_policy_json == null || can(jsondecode(var.baseline_protection_policy_json).Statement)
    error_message = "baseline_protection_policy_json must be null or a JSON policy document (an object with a Statement)."
  }

  validation {
    condition     = length(coalesce(var.baseline_protection_policy_json, "{}")) <= 5120
    error_message = "baseline_protection_policy_json exceeds AWS's 5,120-character SCP limit: shorten the baseline admin list (a wildcard in a role name covers several roles)."
  }
}

variable "overflow_policies" {
  description = "Further SCPs, by name, that a guardrail too long for one policy continues in: description and content (minified JSON) of each."
  type = map(object({
    description = string
    content     = string
  }))
  default  = {}
  nullable = false

  validation {
    condition     = alltrue([for name, p in var.overflow_policies : can(jsondecode(p.content).Statement) && length(p.content) <= 5120])
    error_message = "Each overflow policy must be a JSON policy document (an object with a Statement) of at most 5,120 characters."
  }
}
