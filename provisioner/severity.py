"""Severities: one scale for every control, filter and output format.

The scale is Security Hub's and OCSF's (critical, high, medium, low). Each control states its
severity and why beside its code (provisioner/controls/*). The numbers are what GitHub code
scanning reads from a SARIF rule's `security-severity`: over 9.0 is critical, 7.0 to 8.9 high,
4.0 to 6.9 medium, 0.1 to 3.9 low
(https://docs.github.com/en/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning#reportingdescriptor-object).
"""

from __future__ import annotations

from typing import Literal

Severity = Literal["critical", "high", "medium", "low"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")  # most severe first

SECURITY_SEVERITY: dict[str, str] = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}
# OCSF severity_id (https://schema.ocsf.io/1.5.0/classes/detection_finding): 2 Low .. 5 Critical.
OCSF_SEVERITY_ID: dict[str, int] = {"low": 2, "medium": 3, "high": 4, "critical": 5}


def rank(severity: str | None) -> int:
    """0 for critical .. 3 for low; an unknown severity ranks below low."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def at_least(severity: str | None, threshold: str) -> bool:
    """Whether `severity` is `threshold` or more severe."""
    return rank(severity) <= rank(threshold)


def parse_severity(text: str, option: str) -> Severity:
    value = (text or "").strip().lower()
    if value not in SEVERITIES:
        raise ValueError(f"{option} {text!r}: expected one of {', '.join(SEVERITIES)}")
    return value  # type: ignore[return-value]
