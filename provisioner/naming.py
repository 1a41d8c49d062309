"""Names and values AWS would refuse at apply time, refused at load time instead (one line, exit 2).

Each rule cites the AWS page it comes from. The shapes in baseline.py (character sets, lengths)
come first; these are the rules a regular expression says badly: IP-like names, reserved prefixes
and suffixes, adjacent punctuation, the regions botocore knows, combined limits.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from functools import lru_cache

import botocore
import botocore.session


def _ip_like(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
        return True
    except ValueError:
        return False


# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html (general purpose
# buckets): 3-63 characters of a-z 0-9 . -, starting and ending with a letter or digit (BUCKET_RE
# in baseline.py), no two adjacent periods, not formatted as an IP address, and these reserved
# prefixes and suffixes.
BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_name_problem(name: str) -> str | None:
    """Why S3 would refuse this bucket name, or None."""
    if not 3 <= len(name) <= 63:
        return f"an S3 bucket name has 3-63 characters, {name!r} has {len(name)}"
    if ".." in name:
        return f"an S3 bucket name cannot contain two adjacent periods, got {name!r}"
    if _ip_like(name):
        return f"an S3 bucket name cannot be formatted as an IP address, got {name!r}"
    for prefix in BUCKET_RESERVED_PREFIXES:
        if name.startswith(prefix):
            return f"an S3 bucket name cannot start with {prefix!r} (reserved by S3), got {name!r}"
    for suffix in BUCKET_RESERVED_SUFFIXES:
        if name.endswith(suffix):
            return f"an S3 bucket name cannot end with {suffix!r} (reserved by S3), got {name!r}"
    return None


# https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_CreateTrail.html (Name): ASCII
# letters, digits, '.', '_', '-'; starts and ends with a letter or digit; 3-128 characters; no
# adjacent periods, underscores or dashes ("my-_namespace", "my--namespace"); not an IP address.
_TRAIL_CHARS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,126}[A-Za-z0-9]")
_ADJACENT_PUNCTUATION = re.compile(r"[._-]{2}")


def trail_name_problem(name: str) -> str | None:
    """Why CloudTrail would refuse this trail name, or None."""
    if not _TRAIL_CHARS.fullmatch(name):
        return ("a trail name has 3-128 letters, digits, '.', '_' or '-', starting and ending with a "
                f"letter or digit, got {name!r}")
    if _ADJACENT_PUNCTUATION.search(name):
        return f"a trail name cannot have adjacent '.', '_' or '-', got {name!r}"
    if _ip_like(name):
        return f"a trail name cannot be formatted as an IP address, got {name!r}"
    return None


# https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_CreateTrail.html (S3KeyPrefix):
# "The maximum length is 200 characters." harden applies the same bound to the Config and flow log
# prefixes: AWS appends its own AWSLogs/<account>/<service>/<region>/<date>/<file> path, and the
# whole key must fit S3's 1,024 bytes
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html).
KEY_PREFIX_MAX = 200
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateFlowLogs.html (LogDestination):
# "you can't use AWSLogs as a subfolder name"; AWS Config and CloudTrail write AWSLogs/ below the
# prefix themselves, so a prefix that contains it would collide with their own paths.
RESERVED_FOLDER = "AWSLogs"


def key_prefix_problem(prefix: str) -> str | None:
    if len(prefix) > KEY_PREFIX_MAX:
        return f"an S3 key prefix has at most {KEY_PREFIX_MAX} characters, got {len(prefix)}"
    if RESERVED_FOLDER in prefix.split("/"):
        return f"an S3 key prefix cannot use {RESERVED_FOLDER!r} as a folder: AWS writes its own " \
               f"{RESERVED_FOLDER}/ below the prefix, got {prefix!r}"
    return None


# -- regions ---------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def known_regions(partition: str | None = None) -> tuple[str, ...]:
    """The regions botocore's endpoint data lists for a partition (aws, aws-cn, aws-us-gov, ...),
    or for every partition. A region newer than the installed botocore is not in it: upgrading
    boto3 brings it."""
    session = botocore.session.get_session()
    partitions = [partition] if partition else session.get_available_partitions()
    return tuple(r for p in partitions for r in session.get_available_regions("ec2", p))


def region_problem(region: str, partition: str | None = None) -> str | None:
    """Why a name is not a region of the partition (of any partition when None), naming the
    nearest valid names; None when it is one."""
    known = known_regions(partition)
    if region in known:
        return None
    near = difflib.get_close_matches(region, known, n=3, cutoff=0)
    where = f"the {partition} partition" if partition else "any AWS partition"
    return (f"{region!r} is not a region of {where} (botocore {botocore.__version__}); "
            f"nearest: {', '.join(near)}")
