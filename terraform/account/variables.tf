# Defaults come from harden.toml; a terraform.tfvars can still override them.

variable "account_id" {
  description = "The AWS account this baseline is for; Terraform refuses to touch any other. null: whatever the credentials resolve to."
  type        = string
  default     = "123456789012"

  validation {
    condition     = var.account_id == null || can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be a 12-digit AWS account id."
  }
}

variable "home_region" {
  description = "Region of the trail, its log bucket and the global AWS Config resources."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", var.home_region))
    error_message = "home_region must be an AWS region name such as eu-west-1."
  }
}

variable "regions" {
  description = "Regions the baseline covers. null: every region enabled in the account, read at plan time."
  type        = list(string)
  default     = ["eu-west-1", "eu-central-1", "us-east-1"]

  validation {
    condition     = var.regions == null || alltrue([for r in coalesce(var.regions, []) : can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", r))])
    error_message = "regions must be AWS region names such as eu-west-1."
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
  description = "Tags on every taggable resource."
  type        = map(string)
  default     = { "ManagedBy" = "harden", "Owner" = "platform-security", "CostCenter" = "sec-001" }
}

variable "log_bucket_name" {
  description = "Name of the log bucket. null: <name_prefix>-logs-<account id>-<home region>."
  type        = string
  default     = null

  validation {
    condition     = var.log_bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.log_bucket_name))
    error_message = "log_bucket_name must be a valid S3 bucket name."
  }
}

variable "flow_log_vpc_ids" {
  description = "Per region, the VPCs that get flow logs; a region left out gets every VPC it has, new ones included."
  type        = map(list(string))
  default     = {}
}

variable "ebs_kms_key_arns" {
  description = "Per region, an existing customer key for EBS default encryption; a region left out gets a key created."
  type        = map(string)
  default     = {}
}

variable "cpu_instance_ids" {
  description = "Per region, instances that get a CPU alarm of their own besides the region's fleet alarm."
  type        = map(list(string))
  default     = {}
}

variable "alarm_subscriptions" {
  description = "Who hears the security alarms: SNS subscriptions of the one alarm topic, in the home region (every other region reaches it through the home region's event bus)."
  type = list(object({
    protocol = string
    endpoint = string
  }))
  default = [{ "protocol" = "email", "endpoint" = "secops@example.com" }]
}
