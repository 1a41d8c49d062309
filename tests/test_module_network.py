"""The network and allowed_amis modules, and the account root's wiring of the new controls."""

from __future__ import annotations

import json

from provisioner.baseline import parse_baseline
from provisioner.render import render
from tests.hcl import load_hcl
from tests.module_checks import assert_variables_documented

FAMILY = "network"


def test_default_groups_are_adopted_with_no_rules(mod: dict):
    [group] = mod["resource"]["aws_default_security_group"].values()
    assert group["for_each"] == "${toset(local.vpc_ids)}" and group["region"] == "${var.region}"
    assert "ingress" not in group and "egress" not in group  # no block: every rule is removed
    vpcs = mod["data"]["aws_vpcs"]["all"]
    assert vpcs["region"] == "${var.region}"
    # Only VPCs this account owns: a shared VPC's default group is its owner's to manage.
    assert vpcs["filter"] == [{"name": "owner-id", "values": ["${data.aws_caller_identity.current.account_id}"]}]
    assert "aws_caller_identity" in mod["data"]


def test_network_variables_documented(mod: dict):
    assert_variables_documented(mod, {"region", "name_prefix", "tags", "vpc_ids"})


def test_allowed_amis_module(rendered):
    mod = load_hcl(rendered / "modules" / "allowed_amis")
    settings = mod["resource"]["aws_ec2_allowed_images_settings"]["this"]
    assert settings["state"] == "${var.state}" and settings["region"] == "${var.region}"
    criterion = settings["image_criterion"][0]
    assert criterion["image_providers"] == "${var.image_providers}"
    assert criterion["creation_date_condition"][0]["maximum_days_since_created"] == "${var.max_days_since_created}"
    assert criterion["deprecation_time_condition"][0]["maximum_days_since_deprecated"] == 0
    assert_variables_documented(mod, {"region", "state", "image_providers", "max_days_since_created"})


def test_root_wires_the_baseline_into_the_new_modules(tmp_path):
    b = parse_baseline({"network": {"admin_ports": [22, 3389, 5432, 6379, 27017, 9200]},
                        "ami": {"allowed_owners": ["amazon", "111122223333"], "max_age_days": 30,
                                "allowed_images_state": "enabled"},
                        "eip": {"pool_max_share": 0.5}})
    render(b, tmp_path)
    calls = load_hcl(tmp_path / "account")["module"]
    assert calls["allowed_amis"]["image_providers"] == ["amazon", "111122223333"]
    assert calls["allowed_amis"]["state"] == "enabled" and calls["allowed_amis"]["max_days_since_created"] == 30
    assert calls["alarms"]["eip_pool_alarm_share"] == 0.5
    assert calls["network"]["for_each"] == "${local.regions}"
    params = calls["config"]["rule_parameters"]["RESTRICTED_INCOMING_TRAFFIC"]
    # The Config rule takes five ports at most: the first five, as strings.
    assert params == ('${jsonencode({"blockedPort1" = "22", "blockedPort2" = "3389", "blockedPort3" = "5432", '
                      '"blockedPort4" = "6379", "blockedPort5" = "27017"})}')


def test_switches_leave_the_modules_out(tmp_path):
    render(parse_baseline({"network": {"manage_default_security_groups": False}}), tmp_path)
    calls = load_hcl(tmp_path / "account")["module"]
    assert "network" not in calls and "allowed_amis" not in calls  # no allowed_owners: no Allowed AMIs
    render(parse_baseline({"network": {"enabled": False}}), tmp_path / "off")
    assert "network" not in load_hcl(tmp_path / "off" / "account")["module"]


def test_pool_alarm_only_where_quota_has_a_usage_metric(rendered):
    alarms = load_hcl(rendered / "modules" / "alarms")
    quota = alarms["data"]["aws_servicequotas_service_quota"]["elastic_ips"]
    assert (quota["service_code"], quota["quota_code"]) == ("ec2", "L-0263D0A3")
    alarm = alarms["resource"]["aws_cloudwatch_metric_alarm"]["eip_pool"]
    assert alarm["count"] == "${local.eip_usage_metric == null ? 0 : 1}"
    expressions = [q.get("expression") for q in alarm["metric_query"]]
    assert "(usage / SERVICE_QUOTA(usage)) * 100" in expressions
    assert alarm["threshold"] == "${var.eip_pool_alarm_share * 100}"


def test_pool_alarm_dimensions_are_cloudwatchs_names(rendered, tmp_path):
    """Service Quotas names a usage metric's dimensions in lower case (class, resource, service,
    type); CloudWatch wants them capitalised. The module's own expression, evaluated by real
    Terraform on a usage metric shaped like the data source's."""
    alarms = load_hcl(rendered / "modules" / "alarms")
    expression = alarms["locals"]["eip_usage_dimensions"][2:-1]
    (tmp_path / "main.tf").write_text(
        "locals {\n"
        '  eip_usage_metric = { metric_dimensions = [{ class = "None", resource = "vpc-eip", service = "EC2", type = "" }] }\n'
        f"  eip_usage_dimensions = {expression}\n"
        "}\n"
        'output "dimensions" {\n  value = local.eip_usage_dimensions\n}\n')
    from tests.terraform_helpers import apply_and_read_outputs

    assert apply_and_read_outputs(tmp_path)["dimensions"] == {"Class": "None", "Resource": "vpc-eip", "Service": "EC2"}


def test_restricted_incoming_traffic_parameters_are_the_json_config_expects(tmp_path):
    """The root's rule_parameters, evaluated by real Terraform: a JSON object of string ports."""
    render(parse_baseline({"network": {"admin_ports": [3389, 22, 8443]}}), tmp_path / "r")
    expression = load_hcl(tmp_path / "r" / "account")["module"]["config"]["rule_parameters"]["RESTRICTED_INCOMING_TRAFFIC"]
    (tmp_path / "main.tf").write_text(f'output "params" {{\n  value = {expression[2:-1]}\n}}\n')
    from tests.terraform_helpers import apply_and_read_outputs

    params = json.loads(apply_and_read_outputs(tmp_path)["params"])
    assert params == {"blockedPort1": "3389", "blockedPort2": "22", "blockedPort3": "8443"}


def test_pool_alarm_needs_a_named_usage_metric(rendered, tmp_path):
    """The data source lists a usage_metric whenever Service Quotas returns the object, even an
    empty one (the provider's flattenUsageMetric): the module's own expression, evaluated by real
    Terraform, declares the alarm only for a metric with a name."""
    alarms = load_hcl(rendered / "modules" / "alarms")
    expression = alarms["locals"]["eip_usage_metric"][2:-1]
    data = "data.aws_servicequotas_service_quota.elastic_ips"
    shapes = {
        "named": '[{ usage_metric = [{ metric_name = "ResourceCount", metric_namespace = "AWS/Usage" }] }]',
        "empty": '[{ usage_metric = [{ metric_name = "", metric_namespace = "" }] }]',
        "absent": "[{ usage_metric = [] }]",
        "not_read": "[]",
    }
    (tmp_path / "main.tf").write_text("".join(
        f'output "{name}" {{\n  value = ({expression.replace(data, f"local.{name}")}) == null\n}}\n'
        for name in shapes) + "locals {\n" + "".join(f"  {name} = {shape}\n" for name, shape in shapes.items()) + "}\n")
    from tests.terraform_helpers import apply_and_read_outputs

    assert apply_and_read_outputs(tmp_path) == {"named": False, "empty": True, "absent": True, "not_read": True}
