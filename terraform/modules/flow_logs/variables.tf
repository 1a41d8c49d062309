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

variable "vpc_ids" {
  description = "VPCs to capture. Empty (the default) means every VPC of the region, read at each plan so VPCs created since the last apply are covered too."
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

variable "traffic_type" {
  description = "Traffic the flow logs capture: ALL (the default, required by CIS 3.7 / Security Hub EC2.6), ACCEPT or REJECT."
  type        = string
  default     = "ALL"
  nullable    = false

  validation {
    condition     = contains(["ALL", "ACCEPT", "REJECT"], var.traffic_type)
    error_message = "The traffic_type must be one of ALL, ACCEPT, REJECT."
  }
}

variable "destination_type" {
  description = "Where the flow logs are delivered: \"cloud-watch-logs\" (a log group this module creates, with its IAM role and KMS key) or \"s3\" (the bucket named by s3_bucket_arn)."
  type        = string
  default     = "cloud-watch-logs"
  nullable    = false

  validation {
    condition     = contains(["cloud-watch-logs", "s3"], var.destination_type)
    error_message = "The destination_type must be \"cloud-watch-logs\" or \"s3\"."
  }
}

variable "s3_bucket_arn" {
  description = "ARN of the existing S3 bucket that receives the flow logs (arn:<partition>:s3:::<bucket>). Required when destination_type is \"s3\", ignored otherwise."
  type        = string
  default     = null

  validation {
    condition     = var.s3_bucket_arn == null || can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.s3_bucket_arn))
    error_message = "The s3_bucket_arn must be a bucket ARN such as arn:aws:s3:::my-log-bucket (no key path, no trailing slash)."
  }
}

variable "s3_key_prefix" {
  description = "Folder of the bucket the flow logs are written under; AWS appends AWSLogs/<account>/vpcflowlogs/<region>/... Must match the prefix the bucket policy grants to delivery.logs.amazonaws.com."
  type        = string
  default     = "flow-logs"
  nullable    = false

  validation {
    condition     = can(regex("^[a-zA-Z0-9!_.'()-]+(/[a-zA-Z0-9!_.'()-]+)*$", var.s3_key_prefix))
    error_message = "The s3_key_prefix must be path segments of letters, digits and !_.'()- separated by single slashes, with no leading or trailing slash."
  }

  validation {
    condition     = !strcontains(var.s3_key_prefix, "AWSLogs")
    error_message = "The s3_key_prefix must not contain \"AWSLogs\": AWS reserves that folder name and writes AWSLogs/<account>/ below the prefix itself."
  }
}

variable "s3_file_format" {
  description = "Format of the flow log files delivered to S3: \"plain-text\" (the default) or \"parquet\"."
  type        = string
  default     = "plain-text"
  nullable    = false

  validation {
    condition     = contains(["plain-text", "parquet"], var.s3_file_format)
    error_message = "The s3_file_format must be \"plain-text\" or \"parquet\"."
  }
}

variable "s3_per_hour_partition" {
  description = "Partition the flow log files delivered to S3 per hour instead of per day (cheaper, faster queries)."
  type        = bool
  default     = true
  nullable    = false
}

variable "log_retention_days" {
  description = "Days the CloudWatch Logs group keeps flow log events (one of the values CloudWatch Logs accepts; 0 keeps them forever)."
  type        = number
  default     = 365
  nullable    = false

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "The log_retention_days must be one of 0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "kms_key_arn" {
  description = "ARN of an existing customer-managed KMS key (same Region) that encrypts the log group. Null (the default) creates a regional key with rotation on. A key passed in must let logs.<region>.amazonaws.com use it for this log group."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-zA-Z0-9-]+$", var.kms_key_arn))
    error_message = "The kms_key_arn must be a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<key-id>), not an alias."
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

variable "max_aggregation_interval" {
  description = "Seconds during which a flow is aggregated into one record: 60 or 600 (the default)."
  type        = number
  default     = 600
  nullable    = false

  validation {
    condition     = contains([60, 600], var.max_aggregation_interval)
    error_message = "The max_aggregation_interval must be 60 or 600."
  }
}

variable "log_format" {
  description = "Fields of a flow log record, as space-separated $${field} tokens. Null (the default) uses the AWS default format."
  type        = string
  default     = null

  validation {
    condition     = var.log_format == null || can(regex("^\\$\\{[a-z0-9-]+\\}( \\$\\{[a-z0-9-]+\\})*$", var.log_format))
    error_message = "The log_format must be space-separated $${field} tokens such as \"$${srcaddr} $${dstaddr} $${action}\"."
  }
}
