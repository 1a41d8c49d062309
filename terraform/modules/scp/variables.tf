variable "name_prefix" {
  description = "Prefix for the policy names, and of the harden alarm, event rule and topic names the baseline protection covers."
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
  description = "Create and attach the SCP that denies turning the baseline off (CloudTrail, Config, flow logs, EBS default encryption, harden detections)."
  type        = bool
  default     = true
}

variable "allocate_address_allowed_principal_arns" {
  description = "IAM role/user ARNs still allowed to allocate Elastic IPs and accept/enable address transfers. Wildcards (* ?) are allowed in the path/name part. [] = denied to every principal."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([
      for arn in var.allocate_address_allowed_principal_arns :
      can(regex("^arn:aws(-[a-z]+)*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/*?-]{1,512}$", arn))
    ])
    error_message = "Each allowed principal must be an IAM role or user ARN (arn:aws:iam::<12-digit account>:role/<path/name>); * and ? are allowed only in the path/name part."
  }
}

variable "allocate_address_allowed_regions" {
  description = "Regions where Elastic IPs may be allocated at all. [] = no Region restriction beyond the principal allow-list."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([
      for r in var.allocate_address_allowed_regions : can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", r))
    ])
    error_message = "Each allowed Region must be an AWS Region name such as \"eu-west-1\"."
  }
}

variable "baseline_admin_principal_arns" {
  description = "IAM role/user ARNs exempt from the baseline protection (e.g. the pipeline role that applies harden). Wildcards (* ?) are allowed in the path/name part."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([
      for arn in var.baseline_admin_principal_arns :
      can(regex("^arn:aws(-[a-z]+)*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/*?-]{1,512}$", arn))
    ])
    error_message = "Each baseline admin must be an IAM role or user ARN (arn:aws:iam::<12-digit account>:role/<path/name>); * and ? are allowed only in the path/name part."
  }
}

variable "protected_trail_arn_pattern" {
  description = "CloudTrail trails that may not be stopped, deleted or reconfigured: \"*\" (every trail) or a trail ARN pattern such as arn:aws:cloudtrail:*:*:trail/harden-*."
  type        = string
  default     = "*"

  validation {
    condition     = var.protected_trail_arn_pattern == "*" || can(regex("^arn:aws(-[a-z]+)*:cloudtrail:[a-z0-9*-]*:([0-9]{12}|\\*):trail/[A-Za-z0-9._*?-]+$", var.protected_trail_arn_pattern))
    error_message = "protected_trail_arn_pattern must be \"*\" or a trail ARN pattern (arn:aws:cloudtrail:<region|*>:<account|*>:trail/<name pattern>)."
  }
}

variable "protected_log_group_name_pattern" {
  description = "CloudWatch Logs groups whose metric filters may not be deleted (the CloudTrail log group): a name or a pattern with * ?. null = \"/aws/cloudtrail/<name_prefix>*\" (the cloudtrail module names its group /aws/cloudtrail/<trail name>)."
  type        = string
  default     = null

  validation {
    condition     = var.protected_log_group_name_pattern == null || can(regex("^[A-Za-z0-9_/.#*?-]{1,512}$", var.protected_log_group_name_pattern))
    error_message = "protected_log_group_name_pattern must be a log group name or pattern (letters, digits, _ / . # - and * ?), or null."
  }
}
