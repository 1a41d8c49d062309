variable "region" {
  description = "AWS Region this instance of the module manages (set as the per-resource `region` argument)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS Region name such as \"eu-west-1\"."
  }
}

variable "home_region" {
  description = "Region of the one alarm topic people subscribe to. The instance of this module in that region creates the topic; the others send Elastic IP events and alarm state changes to its default event bus."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", var.home_region))
    error_message = "home_region must be an AWS Region name such as \"eu-west-1\"."
  }
}

variable "event_bus_role_arn" {
  description = "IAM role EventBridge assumes to send this region's events to the home region's default event bus (events:PutEvents on that bus only). Required outside the home region; ignored in it."
  type        = string
  default     = null

  validation {
    condition     = var.event_bus_role_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.event_bus_role_arn))
    error_message = "event_bus_role_arn must be an IAM role ARN, or null."
  }
}

variable "name_prefix" {
  description = "Prefix for every name this module creates (alarms, topic, rule, metric)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9-]{1,32}$", var.name_prefix))
    error_message = "name_prefix must be 1-32 characters of letters, digits and hyphens."
  }
}

variable "tags" {
  description = "Tags applied to every taggable resource."
  type        = map(string)
  default     = {}
}

variable "topic_name" {
  description = "Name of the SNS topic that receives every alarm and event notification. null = \"<name_prefix>-security-alarms\"."
  type        = string
  default     = null

  validation {
    condition     = var.topic_name == null || can(regex("^[A-Za-z0-9_-]{1,256}$", var.topic_name))
    error_message = "topic_name must be 1-256 letters, digits, hyphens or underscores (standard topic, no .fifo)."
  }
}

variable "subscriptions" {
  description = "Subscriptions to the alarm topic. protocol: email, email-json, https, sqs, lambda, sms, application or firehose; firehose needs subscription_role_arn."
  type = list(object({
    protocol              = string
    endpoint              = string
    subscription_role_arn = optional(string)
  }))
  default = []

  validation {
    condition = alltrue([
      for s in var.subscriptions :
      contains(["email", "email-json", "https", "sqs", "lambda", "sms", "application", "firehose"], s.protocol)
    ])
    error_message = "Each subscription protocol must be one of: email, email-json, https, sqs, lambda, sms, application, firehose (plain http is not allowed)."
  }

  validation {
    condition = alltrue([
      for s in var.subscriptions : s.protocol != "https" || startswith(s.endpoint, "https://")
    ])
    error_message = "An https subscription endpoint must start with https://."
  }

  validation {
    condition = alltrue([
      for s in var.subscriptions :
      !contains(["email", "email-json"], s.protocol) || can(regex("^[^@[:space:]]+@[^@[:space:]]+\\.[^@[:space:]]+$", s.endpoint))
    ])
    error_message = "An email or email-json subscription endpoint must be an e-mail address."
  }

  validation {
    condition = alltrue([
      for s in var.subscriptions :
      !contains(["sqs", "lambda", "firehose", "application"], s.protocol) || can(regex("^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]+:[0-9]{12}:.+$", s.endpoint))
    ])
    error_message = "An sqs, lambda, firehose or application subscription endpoint must be the target's ARN."
  }

  validation {
    condition = alltrue([
      for s in var.subscriptions :
      s.protocol != "firehose" || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", s.subscription_role_arn))
    ])
    error_message = "A firehose subscription needs subscription_role_arn (an IAM role ARN SNS assumes to write to the stream)."
  }
}

variable "kms_key_arn" {
  description = "KMS key (or alias) ARN that encrypts the topic. null = create a rotating key in this Region whose policy lets CloudWatch and EventBridge of this account use it. A key you bring must grant the same."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9/_-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key or alias ARN (arn:aws:kms:<region>:<account>:key/<id>), or null."
  }
}

variable "kms_deletion_window_days" {
  description = "Waiting period, in days, before the topic key this module creates is deleted after it is scheduled for deletion (7-30)."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30 && floor(var.kms_deletion_window_days) == var.kms_deletion_window_days
    error_message = "The kms_deletion_window_days must be a whole number from 7 to 30."
  }
}

variable "cpu_alarms_enabled" {
  description = "Create the region's fleet CPU alarm (one Metrics Insights alarm, every instance a contributor) and the own alarms of instance_ids."
  type        = bool
  default     = true
}

variable "instance_ids" {
  description = "Instances that get a CPU alarm of their own besides the fleet alarm (e.g. to page someone else for them). Every running instance gets one anyway when the region has more than a Metrics Insights query evaluates (500)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.instance_ids : can(regex("^i-([0-9a-f]{8}|[0-9a-f]{17})$", id))])
    error_message = "Each instance id must look like i-0123456789abcdef0."
  }
}

variable "cpu_threshold" {
  description = "Average CPUUtilization (percent) at or above which an instance alarm fires."
  type        = number
  default     = 80

  validation {
    condition     = var.cpu_threshold >= 1 && var.cpu_threshold <= 100
    error_message = "cpu_threshold must be between 1 and 100 (percent)."
  }
}

variable "cpu_evaluation_periods" {
  description = "Consecutive periods the CPU must stay above the threshold before the alarm fires."
  type        = number
  default     = 3

  validation {
    condition     = var.cpu_evaluation_periods >= 1 && floor(var.cpu_evaluation_periods) == var.cpu_evaluation_periods
    error_message = "cpu_evaluation_periods must be a whole number >= 1."
  }
}

variable "cpu_period_seconds" {
  description = "Length of one CPU evaluation period in seconds: 10, 30 or a multiple of 60."
  type        = number
  default     = 300

  validation {
    condition     = contains([10, 30], var.cpu_period_seconds) || (var.cpu_period_seconds >= 60 && var.cpu_period_seconds % 60 == 0)
    error_message = "cpu_period_seconds must be 10, 30 or a multiple of 60."
  }
}

variable "cloudtrail_log_group_name" {
  description = "CloudWatch Logs group the CloudTrail trail delivers to. Set it only in the Region where that group lives: the module then creates the Elastic IP metric filter and its alarm there. null = no metric filter in this Region."
  type        = string
  default     = null

  validation {
    condition     = var.cloudtrail_log_group_name == null || can(regex("^[A-Za-z0-9_/.#-]{1,512}$", var.cloudtrail_log_group_name))
    error_message = "cloudtrail_log_group_name must be a CloudWatch Logs group name (1-512 of letters, digits, _ / . # -), or null."
  }
}

variable "allocate_address_alarm_threshold" {
  description = "Elastic IP API calls (allocate, release, associate, address transfer) within 5 minutes at or above which the alarm fires."
  type        = number
  default     = 1

  validation {
    condition     = var.allocate_address_alarm_threshold >= 1 && floor(var.allocate_address_alarm_threshold) == var.allocate_address_alarm_threshold
    error_message = "allocate_address_alarm_threshold must be a whole number >= 1."
  }
}

variable "eip_pool_alarm_share" {
  description = "Share of the Region's Elastic IP quota (0-1] at which the pool alarm fires, where AWS publishes a usage metric for that quota. null: no pool alarm."
  type        = number
  default     = 0.8

  validation {
    condition     = var.eip_pool_alarm_share == null ? true : (var.eip_pool_alarm_share > 0 && var.eip_pool_alarm_share <= 1)
    error_message = "eip_pool_alarm_share must be null or a number greater than 0 and at most 1."
  }
}

variable "metric_namespace" {
  description = "CloudWatch namespace of the metric the CloudTrail metric filter publishes."
  type        = string
  default     = "Harden/Security"

  validation {
    condition     = can(regex("^[A-Za-z0-9.\\-_/#:]{1,255}$", var.metric_namespace)) && !startswith(var.metric_namespace, "AWS/")
    error_message = "metric_namespace must be 1-255 of letters, digits, . - _ / # : and must not start with \"AWS/\" (reserved)."
  }
}

variable "event_rule_enabled" {
  description = "Whether the EventBridge rule that forwards Elastic IP API calls to the topic is ENABLED (false = created but DISABLED)."
  type        = bool
  default     = true
}

variable "topic_policy_json" {
  description = "The alarm topic's policy (JSON), computed by harden: only harden's alarms (CloudWatch) and the Elastic IP rule (EventBridge) may publish, and an explicit Deny refuses every caller that is not an AWS service."
  type        = string
  nullable    = false

  validation {
    condition     = can(jsondecode(var.topic_policy_json).Statement)
    error_message = "topic_policy_json must be a JSON policy document (an object with a Statement)."
  }
}
