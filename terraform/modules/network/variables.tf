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
  description = "Tags applied to every taggable resource of this module (the adopted default security groups)."
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

variable "vpc_ids" {
  description = "VPCs whose default security group is emptied. Empty (the default) means every VPC of the region, read at each plan so VPCs created since the last apply are covered too."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for id in var.vpc_ids : can(regex("^vpc-[0-9a-f]{8,17}$", id))])
    error_message = "Each VPC id must match ^vpc-[0-9a-f]{8,17}$."
  }

  validation {
    condition     = length(distinct(var.vpc_ids)) == length(var.vpc_ids)
    error_message = "The vpc_ids list must not contain duplicates."
  }
}
