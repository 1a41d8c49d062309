"""Which EC2 calls take, give up or move an Elastic IP: the one definition behind the alarms
module's EventBridge rule and CloudWatch Logs metric filter (rendered from here into
templates/modules/alarms/main.tf.j2), and what verify's alarms.allocate_address judges them by.

Moving an address moves its traffic (the hijack), and AssociateAddress is not the only call that
does it:
- DisassociateAddress takes it off its instance (the first half of a move, or a denial of service);
- AssignPrivateIpAddresses with AllowReassignment takes a secondary private IP from another network
  interface, "and any Elastic IP address that is associated with the IP address is also moved"
  (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_AssignPrivateIpAddresses.html).
  Without AllowReassignment it only assigns free addresses (what the EKS VPC CNI does all day), so
  only the reassigning calls are caught;
- AttachNetworkInterface of an interface that carries an Elastic IP brings the address along. The
  CloudTrail record names the interface, not its addresses, so every attach is caught;
- CreateNatGateway with the allocation id of an unassociated address puts that address on a NAT
  gateway; without one, a regional NAT gateway in automatic mode allocates addresses itself
  (no AllocateAddress). Either way it is a public address appearing, so every call is caught
  (private NAT gateways are rare, and NAT gateways are created seldom);
- AssociateNatGatewayAddress / DisassociateNatGatewayAddress move addresses on and off a NAT gateway.
"""

from __future__ import annotations

from typing import Any

# Caught whatever their parameters. Allocation, release and transfer first (an address enters or
# leaves the account), then the moves.
ADDRESS_EVENT_NAMES = (
    "AllocateAddress",
    "ReleaseAddress",
    "EnableAddressTransfer",
    "AcceptAddressTransfer",
    "DisableAddressTransfer",
    "AssociateAddress",
    "DisassociateAddress",
    "AttachNetworkInterface",
    "CreateNatGateway",
    "AssociateNatGatewayAddress",
    "DisassociateNatGatewayAddress",
)
# Caught only when the request sets AllowReassignment. CloudTrail writes EC2 request parameters
# under their query-API names (lowerCamelCase: "allowReassignment", a JSON boolean, as
# AssociateAddress's "allowReassociation").
REASSIGNING_EVENT = "AssignPrivateIpAddresses"
REASSIGNMENT_FIELD = "allowReassignment"

# A metric filter pattern is at most 1024 characters (PutMetricFilter, filterPattern:
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutMetricFilter.html).
FILTER_PATTERN_MAX_CHARS = 1024


def event_pattern() -> dict[str, Any]:
    """The EventBridge pattern: CloudTrail API calls of EC2 (they arrive on the default bus of the
    call's region), failed ones included (an attempt an SCP denied is worth seeing). `$or` inside
    `detail` (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html#eb-filtering-complex-example-or)
    and a boolean value match (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern.html)."""
    return {
        "source": ["aws.ec2"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {
            "eventSource": ["ec2.amazonaws.com"],
            "$or": [
                {"eventName": list(ADDRESS_EVENT_NAMES)},
                {"eventName": [REASSIGNING_EVENT], "requestParameters": {REASSIGNMENT_FIELD: [True]}},
            ],
        },
    }


def filter_pattern() -> str:
    """The same calls as a CloudWatch Logs filter pattern on the trail's log group (`IS TRUE` tests
    a JSON boolean: https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/matching-terms-json-log-events.html)."""
    names = " || ".join(f'($.eventName = "{name}")' for name in ADDRESS_EVENT_NAMES)
    reassigning = f'(($.eventName = "{REASSIGNING_EVENT}") && ($.requestParameters.{REASSIGNMENT_FIELD} IS TRUE))'
    pattern = f'{{ ($.eventSource = "ec2.amazonaws.com") && ({names} || {reassigning}) }}'
    if len(pattern) > FILTER_PATTERN_MAX_CHARS:  # a programming error: the list grew too long
        raise ValueError(f"the address filter pattern is {len(pattern)} characters, over CloudWatch Logs' "
                         f"{FILTER_PATTERN_MAX_CHARS}")
    return pattern
