variable "region" {
  description = "AWS Region this instance of the module manages (set as the per-resource `region` of every regional resource and data source)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$", var.region))
    error_message = "The region must be an AWS Region code such as \"us-east-1\" or \"us-gov-west-1\"."
  }
}

variable "name_prefix" {
  description = "Prefix of the names of the resources this module creates (letters, digits and hyphens, at most 32 characters)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-zA-Z0-9-]{1,32}$", var.name_prefix))
    error_message = "The name_prefix must match ^[a-zA-Z0-9-]{1,32}$."
  }
}

variable "tags" {
  description = "Tags applied to every taggable resource of this module."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([
      for key, value in var.tags :
      length(key) >= 1 && length(key) <= 128 && length(value) <= 256 && !startswith(lower(key), "aws:")
    ])
    error_message = "Tag keys must be 1-128 characters and must not start with \"aws:\"; tag values at most 256 characters."
  }
}

variable "kms_key_arn" {
  description = "ARN of an existing customer-managed KMS key (same Region, symmetric) to make the default EBS key. Null (the default) creates a regional key with rotation on. A key passed in must let EC2 (and the Auto Scaling service-linked role) use it."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-zA-Z0-9-]+$", var.kms_key_arn))
    error_message = "The kms_key_arn must be a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<key-id>), not an alias or a key id."
  }
}

variable "kms_deletion_window_days" {
  description = "Waiting period, in days, before the KMS key this module creates is deleted after it is scheduled for deletion (7-30)."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30 && floor(var.kms_deletion_window_days) == var.kms_deletion_window_days
    error_message = "The kms_deletion_window_days must be a whole number from 7 to 30."
  }
}
