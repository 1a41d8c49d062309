"""The verify report for people: one row per control with its status in each region, then what
failed and why."""

from __future__ import annotations

from collections import defaultdict

from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from provisioner.controls import mapping_labels
from provisioner.findings import Finding, Report

_STYLE = {"fail": "bold red", "error": "yellow", "skipped": "dim", "pass": "green", "suppressed": "magenta"}
_WORD = {"fail": "FAIL", "error": "ERROR", "skipped": "SKIP", "pass": "PASS", "suppressed": "SUPPR"}
_RANK = {"fail": 0, "error": 1, "suppressed": 2, "pass": 3, "skipped": 4}


def worst_status(findings: list[Finding]) -> str:
    return min((f.status for f in findings), key=_RANK.__getitem__) if findings else "skipped"


def render_report(report: Report, console: Console, rules: dict[str, dict[str, str]] | None = None) -> None:
    rules = rules or {}
    by_control: dict[str, list[Finding]] = defaultdict(list)
    for f in report.findings:
        by_control[f.control].append(f)

    table = Table(title=f"harden verify · account {report.account or '?'} · {len(report.regions)} regions",
                  title_justify="left", show_lines=False)
    table.add_column("control", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("regions")
    wide = console.width >= 120
    if wide:
        table.add_column("what it checks", overflow="fold")
    for control in sorted(by_control, key=lambda c: (list(rules).index(c) if c in rules else 99, c)):
        items = by_control[control]
        per_region: dict[str, list[Finding]] = defaultdict(list)
        for f in items:
            per_region[f.region].append(f)
        cells = []
        for region in sorted(per_region):
            worst = worst_status(per_region[region])
            bad = sum(1 for f in per_region[region] if f.status in ("fail", "error"))
            label = f"{region}" + (f" ({bad})" if bad else "")
            cells.append(f"[{_STYLE[worst]}]{escape(label)}[/]")
        worst = worst_status(items)
        rule = rules.get(control, {})
        row = [control, rule.get("severity") or "", f"[{_STYLE[worst]}]{_WORD[worst]}[/]", " ".join(cells)]
        checks = escape(rule.get("title", "")) + (f" [dim]({escape(', '.join(labels))})[/]"
                                                  if (labels := mapping_labels(rule.get("mappings") or {})) else "")
        table.add_row(*row, *([checks] if wide else []))
    console.print(table)

    problems = [f for f in report.sorted_findings() if f.status in ("fail", "error")]
    if problems:
        # A list, not a table: messages are sentences and must stay readable at 80 columns.
        console.print("\n[bold]what needs attention[/]")
        for f in problems:
            severity = f.severity or rules.get(f.control, {}).get("severity") or "?"
            console.print(f"[{_STYLE[f.status]}]{_WORD[f.status]:<5}[/] {severity} · {f.control} · "
                          f"{escape(f.region)} · [bold]{escape(f.resource)}[/]", highlight=False, soft_wrap=True)
            console.print(Padding(Text(f.message), (0, 0, 0, 6)))
    suppressed = [f for f in report.sorted_findings() if f.status == "suppressed"]
    for f in suppressed:
        s = f.suppression or {}
        console.print(f"[{_STYLE['suppressed']}]SUPPR[/] {f.control} · {escape(f.region)} · {escape(f.resource)}: "
                      f"{escape(str(s.get('reason', '')))} (until {s.get('expires', '?')})",
                      highlight=False, soft_wrap=True)
    s = report.summary()
    verdict = ("[yellow]some checks could not run[/]" if s["error"] else
               "[bold red]drift found[/]" if s["fail"] else "[green]no drift[/]")
    console.print(f"{verdict}: {s['fail']} fail, {s['error']} error, {s['pass']} pass, "
                  f"{s['skipped']} skipped, {s['suppressed']} suppressed · {s['api_calls']} API calls in {s['duration_seconds']:.1f}s")


_ACTION_STYLE = {"planned": "cyan", "applied": "green", "failed": "bold red", "skipped": "dim"}


def render_remediation(run, console: Console, applied: bool) -> None:
    """The actions of a remediation run: what would be done (dry run) or what was done."""
    if run.unchecked:  # never "nothing to fix" about what could not be looked at
        console.print(f"[yellow]{escape(run.unchecked_summary())}[/]", highlight=False, soft_wrap=True)
    if not run.results and not run.plan_errors:
        console.print("nothing to fix in the controls that could be checked" if run.unchecked else
                      "[green]nothing to fix[/]: every fixable control passes")
        return
    title = "remediation" + ("" if applied else " (dry run: nothing was changed; add --apply to make these changes)")
    table = Table(title=title, title_justify="left")
    table.add_column("status", no_wrap=True)
    table.add_column("control", no_wrap=True)
    table.add_column("region", no_wrap=True)
    table.add_column("action", overflow="fold")
    for r in run.results:
        text = r.action.description + (f" -> {r.message}" if applied and r.message else "")
        table.add_row(f"[{_ACTION_STYLE[r.status]}]{r.status}[/]", r.action.control, r.action.region, escape(text))
    console.print(table)
    undo = [r for r in run.results if r.status == "applied" and r.detail.get("restore_command")]
    if undo:
        # On lines of their own (not folded into a cell), so each can be copied and run as is.
        console.print("\nto undo a change, run its command:")
        for r in undo:
            console.print(f"  # {escape(r.action.region)} {escape(r.action.resource)}", highlight=False)
            console.print(f"  {escape(r.detail['restore_command'])}", highlight=False, soft_wrap=True)
    for f in run.plan_errors:
        console.print(f"[yellow]could not plan[/] {f.control} · {escape(f.region)}: {escape(f.message)}")
    unfixable = sorted({f.control for f in run.report.findings if f.status == "fail"} -
                       {r.action.control for r in run.results})
    if unfixable:
        console.print(f"[dim]failing but not fixed here: {', '.join(unfixable)} (see harden remediate --help)[/]")
    if run.after is not None:
        s = run.after.summary()
        verdict = "[green]verified[/]" if not s["fail"] and not s["error"] else "[yellow]still failing[/]"
        console.print(f"{verdict} after apply: {s['fail']} fail, {s['error']} error, {s['pass']} pass")


def render_ami_table(rows: list[dict], console: Console) -> None:
    """`harden ec2 amis`: instance, AMI, name, owner, age; the problems of the ones that fail."""
    if not rows:
        console.print("no running instance")
        return
    table = Table(title="running instances and their images", title_justify="left")
    for column in ("region", "instance", "AMI", "AMI name", "owner", "age (days)", "deprecated", "verdict"):
        table.add_column(column, overflow="fold", no_wrap=column in ("region", "instance", "AMI"))
    for r in rows:
        instance = r["instance_id"] + (f" ({r['instance_name']})" if r.get("instance_name") else "")
        verdict = "[green]current[/]" if r["status"] == "pass" else f"[bold red]{escape('; '.join(r['problems']))}[/]"
        table.add_row(r["region"], escape(instance), r["image_id"] or "?", escape(r.get("image_name") or "-"),
                      escape(r.get("owner_alias") or r.get("owner_id") or "-"),
                      "-" if r.get("age_days") is None else str(r["age_days"]),
                      escape(r.get("deprecation_time") or "-") if r.get("deprecated") else "no", verdict)
    console.print(table)
