"""flow_logs.*: every VPC of every region has an ACTIVE flow log capturing ALL traffic."""

from __future__ import annotations

from provisioner.aws import paginate
from provisioner.controls import CheckContext, control
from provisioner.findings import Finding


def vpcs(ctx: CheckContext) -> list[dict]:
    return ctx.cached("ec2:vpcs", lambda: paginate(ctx.client("ec2"), "describe_vpcs", "Vpcs"))


def flow_logs_by_vpc(ctx: CheckContext) -> dict[str, list[dict]]:
    """One describe_flow_logs per region (not one per VPC), grouped by the VPC they watch."""
    def fetch() -> dict[str, list[dict]]:
        grouped: dict[str, list[dict]] = {}
        for fl in paginate(ctx.client("ec2"), "describe_flow_logs", "FlowLogs"):
            grouped.setdefault(fl.get("ResourceId", ""), []).append(fl)
        return grouped

    return ctx.cached("ec2:flow_logs_by_vpc", fetch)


def _summary(fl: dict) -> dict:
    return {
        "flow_log_id": fl.get("FlowLogId"),
        "status": fl.get("FlowLogStatus"),
        "traffic_type": fl.get("TrafficType"),
        "destination_type": fl.get("LogDestinationType"),
        "destination": fl.get("LogDestination") or fl.get("LogGroupName"),
        "deliver_logs_status": fl.get("DeliverLogsStatus"),
    }


def _counts(fl: dict) -> bool:
    # Stricter than "a flow log exists": it must be ACTIVE, capture ALL traffic, and not be
    # failing to deliver (DeliverLogsStatus FAILED means nobody receives the records).
    return (fl.get("FlowLogStatus") == "ACTIVE" and fl.get("TrafficType") == "ALL"
            and fl.get("DeliverLogsStatus", "SUCCESS") != "FAILED")


@control("flow_logs.all_vpcs", title="Every VPC has an active flow log capturing ALL traffic",
         scope="regional", maps_to="CIS 3.7, SecurityHub EC2.6")
def all_vpcs(ctx: CheckContext) -> list[Finding]:
    wanted = set(ctx.baseline.flow_logs.vpc_ids.get(ctx.region, []))
    logs = flow_logs_by_vpc(ctx)
    findings: list[Finding] = []
    region_vpcs = vpcs(ctx)
    for vpc in sorted(region_vpcs, key=lambda v: v["VpcId"]):
        vpc_id = vpc["VpcId"]
        if wanted and vpc_id not in wanted:
            findings.append(ctx.skipped(vpc_id, "not in flow_logs.vpc_ids for this region"))
            continue
        attached = [_summary(fl) for fl in logs.get(vpc_id, [])]
        good = [s for s, fl in zip(attached, logs.get(vpc_id, [])) if _counts(fl)]
        if good:
            findings.append(ctx.passed(vpc_id, f"flow log {good[0]['flow_log_id']} captures ALL traffic",
                                       flow_logs=attached))
        elif attached:
            why = "; ".join(f"{s['flow_log_id']}: status {s['status']}, traffic {s['traffic_type']}"
                            + (f", delivery {s['deliver_logs_status']}" if s["deliver_logs_status"] == "FAILED" else "")
                            for s in attached)
            findings.append(ctx.failed(vpc_id, f"no flow log that is ACTIVE and captures ALL traffic ({why})",
                                       flow_logs=attached))
        else:
            findings.append(ctx.failed(vpc_id, "no flow log", flow_logs=[]))
    present = {v["VpcId"] for v in region_vpcs}
    for missing in sorted(wanted - present):
        findings.append(ctx.failed(missing, "listed in flow_logs.vpc_ids but no such VPC in this region"))
    if not findings:
        findings.append(ctx.passed(ctx.region, "no VPC in this region", vpc_count=0))
    return findings
