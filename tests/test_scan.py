"""provisioner/scan.py and harden's custom checkov checks.

The checkov tests run the real checkov (its own environment) as a subprocess, and scan the
fixtures in as few runs as possible: one run over tests/fixtures/checkov (cases are told apart by
file path), one over scp_unrelated/ alone for the set-level rule, one over a broken file. Under
pytest-xdist the runs are shared between workers (see `_once_per_session`).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from rich.console import Console

from provisioner import scan
from provisioner.checkov_checks.harden_iam import judge_allocate_address, load_document, read_statements
from provisioner.scan import (
    CLOUDTRAIL_CHECK_ID,
    FLOW_LOG_CHECK_ID,
    SCP_ALLOCATE_CHECK_ID,
    SCP_READABLE_CHECK_ID,
    SCP_SET_CHECK_ID,
    CheckFailure,
    ScanError,
    ScanResult,
    find_checkov,
    render_table,
    run_scan,
)

FIXTURES = Path(__file__).parent / "fixtures" / "checkov"
# Skipped in the fixtures run, to prove skip_checks reaches checkov (CKV_AWS_252 must still run).
SKIPPED_BUILTIN = "CKV_AWS_35"

FLOW, SCP, READABLE, TRAIL = FLOW_LOG_CHECK_ID, SCP_ALLOCATE_CHECK_ID, SCP_READABLE_CHECK_ID, CLOUDTRAIL_CHECK_ID


def _scp(name: str, allocate: str | None, readable: str = "passed") -> dict[tuple[str, str], str]:
    """Expected outcomes for one SCP: CKV_HARDEN_2 (None = UNKNOWN, no record) and CKV_HARDEN_4."""
    outcomes = {(READABLE, name): readable}
    if allocate:
        outcomes[(SCP, name)] = allocate
    return outcomes


# case directory -> {(check id, resource): outcome} for every harden check record in that case.
EXPECTED: dict[str, dict[tuple[str, str], str]] = {
    "flow_log_good": {(FLOW, "aws_flow_log.all_traffic"): "passed"},
    "flow_log_bad": {(FLOW, "aws_flow_log.rejected_only"): "failed", (FLOW, "aws_flow_log.no_destination"): "failed"},
    "flow_log_skipped": {(FLOW, "aws_flow_log.lab"): "skipped"},
    "cloudtrail_good": {(TRAIL, "aws_cloudtrail.main"): "passed"},
    "cloudtrail_bad": {
        (TRAIL, "aws_cloudtrail.single_region"): "failed",
        (TRAIL, "aws_cloudtrail.no_validation"): "failed",
        (TRAIL, "aws_cloudtrail.no_global_events"): "failed",
    },
    "scp_jsonencode_deny": _scp("aws_organizations_policy.deny_eip", "passed"),
    "scp_heredoc_json": _scp("aws_organizations_policy.deny_eip", "passed"),
    "scp_plain_json_string": _scp("aws_organizations_policy.deny_eip", "passed"),
    "scp_allow_only": _scp("aws_organizations_policy.allow_eip", "failed"),
    "scp_principal_exemption": _scp("aws_organizations_policy.deny_eip", "passed"),
    "scp_region_exemption": _scp("aws_organizations_policy.deny_eip_outside_regions", "passed"),
    "scp_unrelated_condition": {
        **_scp("aws_organizations_policy.deny_eip_without_mfa", "failed"),
        **_scp("aws_organizations_policy.deny_eip_in_one_region", "failed"),
    },
    # UNKNOWN: nothing about AllocateAddress, so no CKV_HARDEN_2 record; the TAG_POLICY gets none at all.
    "scp_unrelated": _scp("aws_organizations_policy.deny_leave_org", None),
    "scp_ec2_wildcard": {
        **_scp("aws_organizations_policy.deny_ec2", "passed"),
        **_scp("aws_organizations_policy.deny_allocate_prefix", "passed"),
    },
    "scp_notaction": {
        **_scp("aws_organizations_policy.region_guard", "passed"),
        **_scp("aws_organizations_policy.notaction_exempts_eip", "failed"),
    },
    "scp_exempt_everyone": _scp("aws_organizations_policy.deny_eip_to_nobody", "failed"),
    "scp_not_evaluable": {
        **_scp("aws_organizations_policy.from_data_source", None, readable="failed"),
        **_scp("aws_organizations_policy.merged_statement", None, readable="failed"),
    },
    # checkov reports a module's resources once per call, under the module's address and file.
    "scp_module_call": _scp("module.deny_eip.aws_organizations_policy.this", "passed"),
}


def _once_per_session(tmp_path_factory: pytest.TempPathFactory, name: str, produce: Callable[[], Any]) -> Any:
    """Run `produce` once per test session even under pytest-xdist (the suite runs with -n 2):
    the first worker to get here runs it, the others wait on a lock and read its pickled result."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return produce()
    import fcntl  # POSIX only, like the rest of the checkov tooling here

    shared = tmp_path_factory.getbasetemp().parent  # one directory per session, shared by workers
    cache = shared / f"harden-scan-{name}.pickle"
    with open(shared / f"harden-scan-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cache.exists():
            return pickle.loads(cache.read_bytes())
        result = produce()
        cache.write_bytes(pickle.dumps(result))
        return result


@pytest.fixture(scope="session")
def checkov() -> list[str]:
    try:
        return find_checkov(install=False)
    except ScanError as error:
        pytest.skip(f"checkov is not installed (make checkov): {error}")


@pytest.fixture(scope="session")
def fixtures_scan(checkov: list[str], tmp_path_factory: pytest.TempPathFactory) -> ScanResult:
    return _once_per_session(tmp_path_factory, "fixtures", lambda: run_scan(FIXTURES, skip_checks=[SKIPPED_BUILTIN]))


@pytest.fixture(scope="session")
def unrelated_scp_scan(checkov: list[str], tmp_path_factory: pytest.TempPathFactory) -> ScanResult:
    return _once_per_session(tmp_path_factory, "scp-unrelated", lambda: run_scan(FIXTURES / "scp_unrelated"))


def _harden_outcomes(result: ScanResult, case: str) -> dict[tuple[str, str], str]:
    """{(check id, resource): outcome} of harden's per-resource checks for one case directory."""
    in_case = lambda file: file.startswith(f"{case}/")  # noqa: E731
    outcomes: dict[tuple[str, str], str] = {}
    for outcome, records in (("passed", result.passed_checks), ("failed", result.failed), ("skipped", result.skipped)):
        for record in records:
            if record.check_id.startswith("CKV_HARDEN_") and record.check_id != SCP_SET_CHECK_ID and in_case(record.file):
                outcomes[(record.check_id, record.resource)] = outcome
    return outcomes


def _failure(result: ScanResult, check_id: str, resource: str) -> CheckFailure:
    return next(f for f in result.failed if f.check_id == check_id and f.resource == resource)


# --- custom checks, through real checkov -----------------------------------------------------


@pytest.mark.checkov
@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_custom_checks_on_fixture(fixtures_scan: ScanResult, case: str) -> None:
    assert _harden_outcomes(fixtures_scan, case) == EXPECTED[case]


def test_every_fixture_directory_has_expectations() -> None:
    cases = {path.name for path in FIXTURES.iterdir() if path.is_dir()}
    assert cases == set(EXPECTED)


@pytest.mark.checkov
def test_failures_carry_location_name_guideline_and_why(fixtures_scan: ScanResult) -> None:
    failure = _failure(fixtures_scan, FLOW, "aws_flow_log.rejected_only")
    assert failure.file == "flow_log_bad/main.tf"
    assert failure.lines == (1, 5)
    assert failure.check_name.startswith("harden:")
    assert failure.guideline and failure.guideline.startswith("https://docs.aws.amazon.com/")
    assert failure.details == ('traffic_type is \'REJECT\', expected "ALL"',)

    assert _failure(fixtures_scan, FLOW, "aws_flow_log.no_destination").details == (
        "no log_destination (or log_group_name)",
    )
    assert _failure(fixtures_scan, TRAIL, "aws_cloudtrail.no_global_events").details == (
        "include_global_service_events is false",
    )
    allow = _failure(fixtures_scan, SCP, "aws_organizations_policy.allow_eip")
    assert allow.details == ("statement 'AllowAddresses' allows ec2:AllocateAddress",)
    notaction = _failure(fixtures_scan, SCP, "aws_organizations_policy.notaction_exempts_eip")
    assert "NotAction" in notaction.details[0]
    everyone = _failure(fixtures_scan, SCP, "aws_organizations_policy.deny_eip_to_nobody")
    assert "exempts everyone" in everyone.details[0]
    data_source = _failure(fixtures_scan, READABLE, "aws_organizations_policy.from_data_source")
    assert "data.aws_iam_policy_document.deny_eip.json" in data_source.details[0]


@pytest.mark.checkov
def test_module_resources_are_reported_at_the_module_file(fixtures_scan: ScanResult) -> None:
    (record,) = [p for p in fixtures_scan.passed_checks if p.check_id == SCP and p.resource.startswith("module.")]
    assert record.file == "scp_module_call/modules/deny_eip/main.tf"


@pytest.mark.checkov
def test_inline_skip_is_reported_with_its_reason(fixtures_scan: ScanResult) -> None:
    (skip,) = [s for s in fixtures_scan.skipped if s.check_id == FLOW]
    assert (skip.resource, skip.file, skip.reason) == (
        "aws_flow_log.lab",
        "flow_log_skipped/main.tf",
        "lab VPC, rejected traffic only by design",
    )


@pytest.mark.checkov
def test_skip_checks_reach_checkov(fixtures_scan: ScanResult) -> None:
    ids = {f.check_id for f in fixtures_scan.failed} | {p.check_id for p in fixtures_scan.passed_checks}
    assert SKIPPED_BUILTIN not in ids
    assert "CKV_AWS_252" in ids  # the other built-in checks still ran


# --- set-level rule --------------------------------------------------------------------------


@pytest.mark.checkov
def test_set_rule_is_quiet_when_some_scp_denies_allocation(fixtures_scan: ScanResult) -> None:
    assert not [f for f in fixtures_scan.failed if f.check_id == SCP_SET_CHECK_ID]


@pytest.mark.checkov
def test_set_rule_fails_a_configuration_whose_scps_all_ignore_allocation(unrelated_scp_scan: ScanResult) -> None:
    assert not unrelated_scp_scan.ok
    assert unrelated_scp_scan.failed == [
        CheckFailure(
            check_id=SCP_SET_CHECK_ID,
            check_name="harden: no SCP in this configuration denies ec2:AllocateAddress to non-approved principals",
            resource="aws_organizations_policy.*",
            file="main.tf",
            lines=(1, 11),
            guideline=None,
            # the TAG_POLICY beside it is not an SCP
            details=("SCPs in this configuration: aws_organizations_policy.deny_leave_org",),
        )
    ]


def test_set_rule_honours_skip_patterns() -> None:
    assert scan._skipped_by(SCP_SET_CHECK_ID, ["CKV_HARDEN_*"])
    assert scan._skipped_by(SCP_SET_CHECK_ID, ["CKV_AWS_1", f"{SCP_SET_CHECK_ID}:organization/.*"])
    assert not scan._skipped_by(SCP_SET_CHECK_ID, ["CKV_HARDEN_1"])


# --- report shapes ---------------------------------------------------------------------------


@pytest.mark.checkov
def test_to_dict_is_json_with_relative_paths_and_sorted(fixtures_scan: ScanResult) -> None:
    data = json.loads(json.dumps(fixtures_scan.to_dict()))
    assert set(data) == {"directory", "checkov_version", "summary", "failed", "skipped"}
    assert data["directory"] == str(FIXTURES.resolve())
    assert data["checkov_version"] == scan.CHECKOV_VERSION
    assert data["summary"] == {
        "passed": fixtures_scan.passed,
        "failed": len(data["failed"]),
        "skipped": len(data["skipped"]),
    }
    assert data["summary"]["passed"] > 0 and data["summary"]["failed"] > 0 and data["summary"]["skipped"] == 1

    for item in data["failed"]:
        assert set(item) == {"check_id", "check_name", "resource", "file", "lines", "guideline", "details"}
        assert not item["file"].startswith("/") and (FIXTURES / item["file"]).is_file()
        assert len(item["lines"]) == 2 and all(isinstance(n, int) for n in item["lines"])
    order = [(f["file"], f["lines"], f["check_id"], f["resource"]) for f in data["failed"]]
    assert order == sorted(order)
    assert data["skipped"] == [
        {
            "check_id": FLOW,
            "resource": "aws_flow_log.lab",
            "file": "flow_log_skipped/main.tf",
            "reason": "lab VPC, rejected traffic only by design",
        }
    ]


@pytest.mark.checkov
def test_render_table_lists_failures_and_a_summary(fixtures_scan: ScanResult) -> None:
    console = Console(file=io.StringIO(), record=True, width=400, color_system=None)
    render_table(fixtures_scan, console)
    text = console.export_text()
    assert "aws_flow_log.rejected_only" in text and "flow_log_bad/main.tf:1-5" in text
    assert f"{fixtures_scan.passed} passed, {len(fixtures_scan.failed)} failed, 1 skipped" in text


def test_render_table_one_green_line_when_nothing_failed(tmp_path: Path) -> None:
    result = ScanResult(directory=tmp_path, passed=7, failed=[], skipped=[], checkov_version="3.3.30")
    console = Console(file=io.StringIO(), record=True, width=400, color_system="truecolor")
    render_table(result, console)
    assert console.export_text(clear=False).strip() == f"✓ checkov 3.3.30: 7 passed, 0 failed, 0 skipped in {tmp_path}"
    assert "\x1b[32m" in console.export_text(styles=True)  # green


# --- errors ----------------------------------------------------------------------------------


def _tf_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "tf"
    directory.mkdir()
    (directory / "main.tf").write_text('resource "aws_flow_log" "x" {\n  traffic_type = "ALL"\n}\n')
    return directory


def _fake_checkov(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    script = tmp_path / "fake-checkov"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    monkeypatch.setenv("HARDEN_CHECKOV", str(script))


def test_missing_directory_is_a_scan_error(tmp_path: Path) -> None:
    with pytest.raises(ScanError, match=r"^.*/nowhere: no such directory to scan$"):
        run_scan(tmp_path / "nowhere")


def test_directory_without_tf_files_is_a_scan_error(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("no terraform here\n")
    with pytest.raises(ScanError, match=r": no \.tf files to scan$"):
        run_scan(tmp_path)


def test_harden_checkov_pointing_at_a_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "no-checkov-here"
    monkeypatch.setenv("HARDEN_CHECKOV", str(missing))
    message = f"HARDEN_CHECKOV={missing}: no such file (point it at a checkov executable, or unset it)"
    with pytest.raises(ScanError) as raised:
        find_checkov()
    assert str(raised.value) == message
    with pytest.raises(ScanError, match="HARDEN_CHECKOV="):
        run_scan(_tf_dir(tmp_path))


def test_checkov_printing_no_json_is_a_scan_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_checkov(tmp_path, monkeypatch, "echo 'Traceback: something odd'")
    with pytest.raises(ScanError, match=r"checkov printed no JSON report scanning .*/tf: Traceback: something odd$"):
        run_scan(_tf_dir(tmp_path))


def test_checkov_crash_is_a_scan_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_checkov(tmp_path, monkeypatch, "echo 'ValueError: boom' >&2; exit 2")
    with pytest.raises(ScanError, match=r"checkov failed scanning .*/tf \(exit 2\): ValueError: boom$"):
        run_scan(_tf_dir(tmp_path))


def test_checkov_timeout_is_a_scan_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_checkov(tmp_path, monkeypatch, "sleep 30")
    with pytest.raises(ScanError, match=r"checkov timed out after 1s scanning .*/tf$"):
        run_scan(_tf_dir(tmp_path), timeout=1)


def test_broken_custom_check_is_a_scan_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What checkov logs (and then ignores) when a check file raises on import.
    log = "2026-01-01 00:00:00,000 [MainThread  ] [ERROR]  Cannot load external check 'harden_x' from /c/harden_x.py"
    report = '{"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0, "checkov_version": "3.3.30"}'
    _fake_checkov(tmp_path, monkeypatch, f"echo \"{log}\" >&2; echo '{report}'")
    with pytest.raises(ScanError, match=r"could not load custom check harden_x"):
        run_scan(_tf_dir(tmp_path))


@pytest.mark.checkov
def test_unparsable_terraform_is_a_scan_error(checkov: list[str], tmp_path: Path) -> None:
    # checkov skips a file it cannot parse and exits 0; harden must not report it clean.
    (tmp_path / "ok.tf").write_text('resource "aws_flow_log" "x" {\n  traffic_type = "ALL"\n}\n')
    (tmp_path / "broken.tf").write_text('resource "aws_flow_log" "y" {\n  traffic_type =\n')
    with pytest.raises(ScanError, match=r"checkov could not parse 1 file\(s\) in .*: broken\.tf$"):
        run_scan(tmp_path)


# --- finding and installing checkov ----------------------------------------------------------


@pytest.fixture
def no_checkov_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("HARDEN_CHECKOV", raising=False)
    monkeypatch.setattr(scan, "REPO_CHECKOV_VENV", tmp_path / "no-venv")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "harden" / f"checkov-{scan.CHECKOV_VERSION}"


def test_find_checkov_without_install_says_how_to_get_it(no_checkov_anywhere: Path) -> None:
    with pytest.raises(ScanError, match=rf"^checkov not found: set HARDEN_CHECKOV, run `make checkov`, .* {no_checkov_anywhere}$"):
        find_checkov(install=False)


def test_find_checkov_uses_the_managed_environment(no_checkov_anywhere: Path) -> None:
    python = no_checkov_anywhere / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    assert find_checkov(install=False) == [str(python), "-W", "ignore::SyntaxWarning", "-m", "checkov.main"]


def test_managed_install_failure_names_its_log_and_leaves_nothing_half_built(tmp_path: Path) -> None:
    target = tmp_path / "harden" / "checkov-x"
    steps = lambda build: [  # noqa: E731
        [sys.executable, "-c", "print('creating venv')"],
        [sys.executable, "-c", "import sys; sys.exit('pip: no matching distribution')"],
        [sys.executable, "-c", "print('never runs')"],
    ]
    with pytest.raises(ScanError) as raised:
        scan._create_managed_env(target, steps)
    log = tmp_path / "harden" / "checkov-x-install.log"
    assert str(raised.value) == f"installing checkov {scan.CHECKOV_VERSION} failed (exit 1); see {log}"
    assert "pip: no matching distribution" in log.read_text() and "never runs" not in log.read_text()
    assert sorted(p.name for p in target.parent.iterdir()) == ["checkov-x-install.log"]


def test_managed_install_is_renamed_into_place(tmp_path: Path) -> None:
    target = tmp_path / "harden" / "checkov-x"
    steps = lambda build: [[sys.executable, "-c", f"open({str(build / 'marker')!r}, 'w').write('ok')"]]  # noqa: E731
    scan._create_managed_env(target, steps)
    assert (target / "marker").read_text() == "ok"
    assert "$ " in (target / "install.log").read_text()
    assert [p.name for p in target.parent.iterdir()] == ["checkov-x"]


# --- the SCP judge on shapes checkov does not produce from these fixtures --------------------

DENY = {"Effect": "Deny", "Resource": "*"}


@pytest.mark.parametrize(
    ("document", "verdict"),
    [
        # content as a JSON string, single Statement object, Action as a string
        ('{"Statement": {"Effect": "Deny", "Action": "ec2:allocateaddress", "Resource": "*"}}', "pass"),
        ({"Statement": [{**DENY, "Action": "*"}]}, "pass"),
        ({"Statement": [{**DENY, "Action": ["s3:*", "ec2:Alloc?teAddress"]}]}, "pass"),
        # a broad Deny with an unrelated condition is not about addresses at all
        ({"Statement": [{**DENY, "Action": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}, "unrelated"),
        ({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}, "unrelated"),
        ({"Statement": [{**DENY, "Action": "ec2:AllocateAddress", "NotResource": "*"}]}, "fail"),
        # StringNotEquals compares literally: "*" exempts only a principal literally named "*"
        ({"Statement": [{**DENY, "Action": "ec2:AllocateAddress", "Condition": {"StringNotEquals": {"aws:PrincipalAccount": "*"}}}]}, "pass"),
        ({"Statement": [{**DENY, "Action": "ec2:AllocateAddress", "Condition": {"StringNotLike": {"aws:PrincipalAccount": "*"}}}]}, "fail"),
        ({"Statement": [{**DENY, "Action": "ec2:AllocateAddress", "Condition": {"ForAnyValue:StringNotEquals": {"aws:PrincipalTag/team": "net"}}}]}, "fail"),
        ({"Statement": [{**DENY, "Action": "ec2:AllocateAddress", "Condition": {"StringNotLike": {"aws:PrincipalTag/team": "net-*"}}}]}, "pass"),
        # a Deny wins over an Allow in the same policy
        ({"Statement": [{"Effect": "Allow", "Action": "ec2:AllocateAddress", "Resource": "*"}, {**DENY, "Action": "ec2:*"}]}, "pass"),
    ],
)
def test_judge_allocate_address(document: Any, verdict: str) -> None:
    loaded = load_document([document])  # checkov wraps attribute values in a list
    assert loaded is not None
    assert judge_allocate_address(loaded)[0] == verdict


def test_unreadable_statements_are_named() -> None:
    _, problems = read_statements({"Statement": ["merge(local.a, local.b)", {"Effect": "Deny"}]})
    assert problems == [
        "Statement[0] is an expression checkov could not evaluate: merge(local.a, local.b)",
        "Statement[1] has no Action/NotAction list of strings: None",
    ]
    assert load_document(["data.aws_iam_policy_document.x.json"]) is None


def test_checkov_runs_without_aws_credentials_or_other_secrets(monkeypatch, tmp_path) -> None:
    # The process checkov runs in (scan._run), asked to print its own environment.
    from provisioner.scan import _run

    secrets = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cret", "AWS_SESSION_TOKEN": "tok",
               "AWS_PROFILE": "prod", "BC_API_KEY": "prisma", "GITHUB_TOKEN": "ghp_x"}
    for name, value in {**secrets, "CKV_FRAMEWORK": "terraform", "LANG": "C.UTF-8"}.items():
        monkeypatch.setenv(name, value)
    code, stdout, _ = _run([sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"], 60, tmp_path)
    seen = json.loads(stdout)
    assert code == 0 and not set(secrets) & set(seen), seen
    assert not [k for k in seen if k.startswith("AWS_")]
    assert seen["CKV_FRAMEWORK"] == "terraform" and seen["LANG"] == "C.UTF-8" and seen["BC_SKIP_MAPPING"] == "TRUE"
