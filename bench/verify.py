"""Benchmark `harden verify`: R regions x K resources per region on the emulator.

    .venv/bin/python bench/verify.py                 # the three standard sizes
    .venv/bin/python bench/verify.py --sizes 4x10    # one size

Prints wall time and API calls (total, per region, and the operations whose count grows with
the resources). API calls must grow with regions, not with resources, except where an API forces
per-resource calls.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ALL_REGIONS = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-west-3",
               "eu-central-1", "eu-north-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1",
               "ap-northeast-2", "ap-south-1", "ca-central-1", "sa-east-1"]


def seed(regions: list[str], k: int) -> None:
    import boto3

    for region in regions:
        ec2 = boto3.client("ec2", region_name=region)
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        for i in range(k):
            vpc = ec2.create_vpc(CidrBlock=f"10.{i}.0.0/16")["Vpc"]["VpcId"]
            subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.{i}.0.0/24")["Subnet"]["SubnetId"]
            inst = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                     SubnetId=subnet)["Instances"][0]
            zone = inst["Placement"]["AvailabilityZone"]
            vol = ec2.create_volume(AvailabilityZone=zone, Size=8)["VolumeId"]
            ec2.attach_volume(VolumeId=vol, InstanceId=inst["InstanceId"], Device="/dev/sdf")
            ec2.allocate_address(Domain="vpc")


def run(r: int, k: int, endpoint: str) -> dict:
    from provisioner.aws import AwsSession
    from provisioner.baseline import parse_baseline
    from provisioner.verify import run_verify

    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).read()
    regions = ALL_REGIONS[:r]
    t0 = time.perf_counter()
    seed(regions, k)
    seeded = time.perf_counter() - t0
    baseline = parse_baseline({"regions": regions, "home_region": regions[0]})
    aws = AwsSession(region=regions[0])
    t0 = time.perf_counter()
    report = run_verify(aws, baseline)
    wall = time.perf_counter() - t0
    per_region = aws.calls.by_region()
    return {"r": r, "k": k, "seed_s": seeded, "wall_s": wall, "calls": aws.calls.total,
            "per_region": per_region, "ops": aws.calls.by_operation(),
            "findings": Counter(f.status for f in report.findings)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="4x1,4x10,16x10", help="comma-separated RxK sizes")
    args = parser.parse_args()

    from provisioner.sandbox import Sandbox

    # The sandbox (moto plus the three read APIs it lacks), empty: the bench seeds its own shape.
    results = []
    with Sandbox() as sandbox, sandbox.activated():
        for size in args.sizes.split(","):
            r, k = (int(x) for x in size.lower().split("x"))
            results.append(run(r, k, sandbox.endpoint_url))

    print(f"{'R x K':>8} {'wall s':>8} {'calls':>7} {'calls/region':>13} {'findings':>28}")
    for res in results:
        regional = [n for region, n in res["per_region"].items() if region in ALL_REGIONS]
        per = f"{min(regional)}-{max(regional)}" if regional else "-"
        fnd = ", ".join(f"{n} {s}" for s, n in sorted(res["findings"].items()))
        print(f"{res['r']:>4} x{res['k']:<3} {res['wall_s']:>8.2f} {res['calls']:>7} {per:>13} {fnd:>28}")
    # Which operations grow with K (same R, different K): those are per-resource calls.
    by_r: dict[int, list[dict]] = {}
    for res in results:
        by_r.setdefault(res["r"], []).append(res)
    for r, group in by_r.items():
        if len(group) < 2:
            continue
        small, large = min(group, key=lambda g: g["k"]), max(group, key=lambda g: g["k"])
        grew = {op: (small["ops"].get(op, 0), n) for op, n in large["ops"].items() if n > small["ops"].get(op, 0)}
        print(f"\nR={r}: operations whose count grows from K={small['k']} to K={large['k']}:")
        for op, (a, b) in sorted(grew.items()):
            print(f"  {op:<45} {a:>5} -> {b:>5}")
        if not grew:
            print("  none: API calls depend on regions only")


if __name__ == "__main__":
    main()
