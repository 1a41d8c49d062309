# ec2.ami_currency, as an account-level guard: EC2 "Allowed AMIs" in one region. Only images from
# the listed providers, younger than max_days_since_created and not deprecated, are allowed.
# "audit-mode" marks other images in DescribeImages (ImageAllowed = false) without blocking;
# "enabled" blocks discovering and launching them. Instances already running are never touched.
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-allowed-amis.html
resource "aws_ec2_allowed_images_settings" "this" {
  region = var.region
  state  = var.state

  image_criterion {
    image_providers = var.image_providers

    creation_date_condition {
      maximum_days_since_created = var.max_days_since_created
    }

    deprecation_time_condition {
      maximum_days_since_deprecated = 0
    }
  }
}
