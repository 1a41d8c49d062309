"""AWS access: one session, cached clients per (service, region), adaptive retries, a per-run
count of API calls, region discovery and a bounded pool that runs region work concurrently.

`AWS_ENDPOINT_URL` (honoured by boto3 itself) points every client at an emulator; nothing else
changes between the sandbox and a real account.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import boto3
import botocore.client
import botocore.credentials
import botocore.exceptions
import botocore.session
from botocore.config import Config

from provisioner import __version__

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_WORKERS = 8
SESSION_NAME_PREFIX = "harden"

# Errors that mean "we may not look", as opposed to "it is not there".
ACCESS_DENIED_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthFailure",
    "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException",
    "OptInRequired", "AWSOrganizationsNotInUseException", "AccessDeniedForDependencyException",
})


class AwsError(Exception):
    """A call failed in a way that stops a check from deciding: says which call and why."""


def error_code(exc: BaseException) -> str | None:
    if isinstance(exc, botocore.exceptions.ClientError):
        return exc.response.get("Error", {}).get("Code")
    return None


def describe_error(exc: BaseException) -> str:
    """One line for a person: what failed and why, no stack trace."""
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        op = exc.operation_name
        code = err.get("Code", "Error")
        # Emulators and proxies can answer with a page of HTML: one line, bounded.
        message = " ".join(str(err.get("Message") or "").split())[:300]
        if code in ACCESS_DENIED_CODES:
            return f"access denied calling {op} ({code}){': ' + message if message else ''}"
        return f"{op} failed: {code}{': ' + message if message else ''}"
    if isinstance(exc, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
                        botocore.exceptions.ReadTimeoutError)):
        return f"region unreachable: {exc}"
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return "no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return " ".join(str(exc).split())
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


class CallCounter:
    """Counts API calls by (service, operation), retries excluded, across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._by_region: Counter[str] = Counter()

    def hook(self, service: str, region: str) -> Callable[..., None]:
        def _count(model, **_kwargs) -> None:  # botocore passes the OperationModel as `model`
            with self._lock:
                self._counts[(service, model.name)] += 1
                self._by_region[region] += 1

        return _count

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def by_operation(self) -> dict[str, int]:
        with self._lock:
            return {f"{svc}:{op}": n for (svc, op), n in sorted(self._counts.items())}

    def by_region(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._by_region.items()))


class AwsSession:
    """Everything a run needs to talk to AWS. Thread-safe: region workers share it."""

    def __init__(
        self,
        profile: str | None = None,
        role_arn: str | None = None,
        region: str | None = None,
        max_workers: int = DEFAULT_WORKERS,
        max_attempts: int = 8,
        session: boto3.Session | None = None,
        base: "AwsSession | None" = None,
    ) -> None:
        """profile/session: where the caller's credentials come from; role_arn: assume it first
        (credentials refreshed before they expire); base: an AwsSession whose credentials assume
        role_arn (an organization run assumes one role per member account from one base)."""
        if base is not None:
            core = base._core
        elif session is not None:
            core = session._session  # the boto3 session's botocore session (tests hand one in)
        else:
            core = shared_botocore_session(profile)
        self.default_region = region or core.get_config_variable("region") or "us-east-1"
        self._config = Config(
            retries={"mode": "adaptive", "max_attempts": max_attempts},
            user_agent_extra=f"harden/{__version__}",
            connect_timeout=10,
            read_timeout=60,
        )
        if role_arn:
            assumer = (base.client("sts") if base is not None
                       else core.create_client("sts", region_name=self.default_region, config=self._config))
            self._core = shared_botocore_session(None)
            self._core._credentials = assume_role_credentials(assumer, role_arn)  # no public setter for refreshable creds
        else:
            self._core = core
        self.max_workers = max(1, max_workers)
        self.calls = CallCounter()
        self._clients: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()
        self._account_id: str | None = None

    @property
    def session(self) -> boto3.Session:
        """A boto3 session with this run's credentials (for callers that want boto3's API)."""
        return boto3.Session(botocore_session=self._core, region_name=self.default_region)

    def client(self, service: str, region: str | None = None):
        region = region or self.default_region
        key = (service, region)
        with self._lock:  # boto3 client creation is not thread-safe; using a client is
            cached = self._clients.get(key)
            if cached is None:
                cached = self._core.create_client(service, region_name=region, config=self._config)
                cached.meta.events.register("before-call.*.*", self.calls.hook(service, region))
                self._clients[key] = cached
            return cached

    def account_id(self) -> str:
        if self._account_id is None:
            self._account_id = self.client("sts").get_caller_identity()["Account"]
        return self._account_id

    def enabled_regions(self) -> list[str]:
        """Regions enabled for this account: opt-in regions count only once opted in."""
        resp = self.client("ec2").describe_regions(
            AllRegions=False,
            Filters=[{"Name": "opt-in-status", "Values": ["opt-in-not-required", "opted-in"]}],
        )
        # AWS answers with the caller's partition only; an emulator may list every partition.
        home = partition_for(self.default_region)
        return sorted(r["RegionName"] for r in resp["Regions"] if partition_for(r["RegionName"]) == home)

    def resolve_regions(self, explicit: Sequence[str] | None) -> list[str]:
        return list(explicit) if explicit else self.enabled_regions()

    def map_regions(self, fn: Callable[[str], R], regions: Iterable[str]) -> Iterator[tuple[str, R | BaseException]]:
        """Run fn(region) on a bounded pool; yield (region, result or exception) as each ends."""
        regions = list(regions)
        if not regions:
            return
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(regions)),
                                thread_name_prefix="harden-region") as pool:
            futures = {pool.submit(fn, region): region for region in regions}
            for future in as_completed(futures):
                region = futures[future]
                try:
                    yield region, future.result()
                except Exception as exc:  # reported per region, the run goes on
                    yield region, exc


# -- one botocore, many credential sets ----------------------------------------------------------
# An organization run talks to hundreds of accounts x regions x services. Built naively, every
# account's session re-reads botocore's endpoint data and every client re-parses its service model
# and rebuilds its class (EC2: ~600 generated methods): measured at ~10 ms of CPU per client and
# most of the per-account cost (bench/organization.py --profile). So every session harden makes
# shares one data loader (its JSON cache), one endpoint resolver, one exceptions factory, and the
# parsed service models and generated client classes; only credentials differ.

class _Shared:
    lock = threading.Lock()
    template: botocore.session.Session | None = None
    models: dict[tuple[str, str | None], object] = {}
    classes: dict[tuple[str, str | None], type] = {}


def shared_botocore_session(profile: str | None) -> botocore.session.Session:
    """A new botocore session (its own credentials and profile) on the process-wide shared data."""
    with _Shared.lock:
        if _Shared.template is None:
            template = botocore.session.Session()
            template.get_component("data_loader")._harden_shared = True
            for name in ("endpoint_resolver", "exceptions_factory", "default_config_resolver"):
                template._get_internal_component(name)  # built once, here
            _Shared.template = template
        template = _Shared.template
    core = botocore.session.Session(profile=profile)
    core.register_component("data_loader", template.get_component("data_loader"))
    for name in ("endpoint_resolver", "exceptions_factory", "default_config_resolver"):
        # Read-only after construction; botocore has no public way to hand them to another session.
        core._register_internal_component(name, template._get_internal_component(name))
    return core


_original_load_model = botocore.client.ClientCreator._load_service_model
_original_client_class = botocore.client.ClientCreator._create_client_class


def _cached_load_model(self, service_name, api_version=None):
    if not getattr(self._loader, "_harden_shared", False):  # someone else's botocore: untouched
        return _original_load_model(self, service_name, api_version)
    key = (service_name, api_version)
    model = _Shared.models.get(key)
    if model is None:
        model = _Shared.models.setdefault(key, _original_load_model(self, service_name, api_version))
    return model


def _cached_client_class(self, service_name, service_model):
    if not getattr(self._loader, "_harden_shared", False):
        return _original_client_class(self, service_name, service_model)
    key = (service_name, service_model.api_version)
    cls = _Shared.classes.get(key)
    if cls is None:
        cls = _Shared.classes.setdefault(key, _original_client_class(self, service_name, service_model))
    return cls


# Sessions built by shared_botocore_session() carry no per-session class customisation (harden
# registers no creating-client-class handlers), so a class and a model serve every client of a service.
botocore.client.ClientCreator._load_service_model = _cached_load_model
botocore.client.ClientCreator._create_client_class = _cached_client_class


def assume_role_credentials(sts, role_arn: str, duration: int = 3600) -> botocore.credentials.Credentials:
    """Credentials for role_arn that renew themselves before they expire (botocore refreshes
    them 15 minutes ahead), so a run longer than the role's session still signs every call."""

    def fetch() -> dict[str, str]:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName=f"{SESSION_NAME_PREFIX}-{stamp}",
                                DurationSeconds=duration)["Credentials"]
        return {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"], "expiry_time": creds["Expiration"].isoformat()}

    return botocore.credentials.RefreshableCredentials.create_from_metadata(
        metadata=fetch(), refresh_using=fetch, method="assume-role")


def partition_for(region: str) -> str:
    """The ARN partition of a region (aws, aws-cn, aws-us-gov)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def paginate(client, operation: str, result_key: str, **kwargs) -> list:
    """All items of a paginated operation (every list call goes through here)."""
    items: list = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(result_key, []))
    return items
