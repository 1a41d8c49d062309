variable "region" {
  description = "AWS Region whose Allowed AMIs settings this instance of the module manages."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$", var.region))
    error_message = "The region must be an AWS Region code such as \"us-east-1\" or \"us-gov-west-1\"."
  }
}

variable "state" {
  description = "\"audit-mode\" (the default) flags images outside the criteria without blocking them; \"enabled\" blocks discovering and launching them."
  type        = string
  default     = "audit-mode"
  nullable    = false

  validation {
    condition     = contains(["audit-mode", "enabled"], var.state)
    error_message = "The state must be \"audit-mode\" or \"enabled\"."
  }
}

variable "image_providers" {
  description = "Whose images are allowed: 12-digit account ids, or the aliases amazon, aws-marketplace, aws-backup-vault."
  type        = list(string)
  nullable    = false

  validation {
    condition     = length(var.image_providers) >= 1 && length(var.image_providers) <= 200
    error_message = "The image_providers list must name 1 to 200 providers."
  }

  validation {
    condition     = alltrue([for p in var.image_providers : can(regex("^([0-9]{12}|amazon|aws-marketplace|aws-backup-vault)$", p))])
    error_message = "Each image provider must be a 12-digit account id, amazon, aws-marketplace or aws-backup-vault."
  }
}

variable "max_days_since_created" {
  description = "The oldest an allowed image may be, in days since it was created."
  type        = number
  default     = 90
  nullable    = false

  validation {
    condition     = var.max_days_since_created >= 1 && var.max_days_since_created <= 3650 && floor(var.max_days_since_created) == var.max_days_since_created
    error_message = "The max_days_since_created must be a whole number from 1 to 3650."
  }
}
