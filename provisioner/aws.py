"""AWS access: one session, cached clients per (service, region), adaptive retries, a per-run
count of API calls, region discovery and a bounded pool that runs region work concurrently.

`AWS_ENDPOINT_URL` (honoured by boto3 itself) points every client at an emulator; nothing else
changes between the sandbox and a real account.

A hung call costs seconds, not minutes: every client has connect and read timeouts; a region
where a call timed out or could not connect is marked unreachable for the rest of the run, so its
remaining calls fail at once instead of each waiting (and retrying) again; and `map_regions` can
bound the whole fan-out, after which the unfinished regions are reported and their calls stop.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

import boto3
import botocore.client
import botocore.credentials
import botocore.exceptions
import botocore.loaders
import botocore.regions
import botocore.utils
import botocore.session
from botocore.config import Config

from provisioner import __version__

T = TypeVar("T")
R = TypeVar("R")

_ARN_PARSER = botocore.utils.ArnParser()
_log = logging.getLogger("harden.aws")  # `harden ... --verbose` shows each call

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


class RegionUnreachable(botocore.exceptions.BotoCoreError):
    """Raised instead of calling a region that already timed out or refused a connection in this
    run: its remaining calls fail at once rather than each waiting for a timeout again."""

    fmt = "region unreachable: {region}: {reason}"


class RunTimedOut(botocore.exceptions.BotoCoreError):
    """Raised instead of calling AWS once the run's time limit has passed."""

    fmt = "not checked: the run's time limit of {seconds:g}s passed (HARDEN_RUN_TIMEOUT)"


# Timeouts: defaults, and the environment variables that change them (README "Failure behaviour").
# botocore's own defaults are 60 s each, retried up to max_attempts: minutes per hung call.
TIMEOUT_VARIABLES = {"connect": "HARDEN_CONNECT_TIMEOUT", "read": "HARDEN_READ_TIMEOUT",
                     "run": "HARDEN_RUN_TIMEOUT"}


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0   # seconds to open a connection to an endpoint
    read: float = 20.0     # seconds to wait for any byte of an answer
    run: float = 300.0     # seconds for one fan-out over the regions (a verify, a listing)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Timeouts":
        """The defaults, overridden by HARDEN_*_TIMEOUT. ValueError (one line) on a bad value."""
        environ = os.environ if environ is None else environ
        values = {}
        for field_name, variable in TIMEOUT_VARIABLES.items():
            text = environ.get(variable, "").strip()
            if not text:
                continue
            try:
                value = float(text)
            except ValueError:
                value = float("nan")
            if not 0 < value <= 86400:  # also rejects nan and inf
                raise ValueError(f"{variable}={text!r}: expected a number of seconds, more than 0 and at most 86400")
            values[field_name] = value
        return cls(**values)


# Endpoints that are not regional: a hung IAM call says nothing about a region's health.
GLOBAL_SERVICES = frozenset({"iam", "organizations", "route53", "cloudfront"})
_REGION_DOWN = (botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError,
                botocore.exceptions.EndpointConnectionError)


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
    if isinstance(exc, botocore.exceptions.ReadTimeoutError):
        return f"region unreachable: no answer within the read timeout: {exc}"
    if isinstance(exc, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError)):
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
            _log.info("%s %s:%s", region, service, model.name)

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
        timeouts: Timeouts | None = None,
    ) -> None:
        """profile/session: where the caller's credentials come from; role_arn: assume it first
        (credentials refreshed before they expire); base: an AwsSession whose credentials assume
        role_arn (an organization run assumes one role per member account from one base);
        timeouts: default HARDEN_*_TIMEOUT (a member session keeps its base's)."""
        self.timeouts = timeouts or (base.timeouts if base is not None else Timeouts.from_env())
        if base is not None:
            core = base._core
        elif session is not None:
            core = session._session  # the boto3 session's botocore session (tests hand one in)
        else:
            core = shared_botocore_session(profile)
            # botocore reads a profile only when a value is first asked of it, which a run would
            # report as AWS being unreachable (exit 3): a misspelt --profile is usage (exit 2).
            if profile and profile not in core.available_profiles:
                raise botocore.exceptions.ProfileNotFound(profile=profile)
        self.default_region = region or core.get_config_variable("region") or "us-east-1"
        self._config = Config(
            retries={"mode": "adaptive", "max_attempts": max_attempts},
            user_agent_extra=f"harden/{__version__}",
            connect_timeout=self.timeouts.connect,
            read_timeout=self.timeouts.read,
        )
        self._down: dict[str, str] = {}      # region (or "global") -> why it is unreachable
        self._timeouts_seen: Counter[str] = Counter()  # per region (or "global"): timeouts so far
        self._local = threading.local()      # the deadline of the fan-out this thread works for
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
                where = "global" if service in GLOBAL_SERVICES else region
                cached.meta.events.register("before-send", self._guard(where))
                cached.meta.events.register("needs-retry", self._watch(where))
                self._clients[key] = cached
            return cached

    # -- faults: unreachable regions and the run's deadline ----------------------------------------
    def unreachable(self) -> dict[str, str]:
        """Regions (or "global") marked unreachable in this run, with the reason."""
        with self._lock:
            return dict(self._down)

    @contextlib.contextmanager
    def must_try(self) -> Iterator[None]:
        """Calls a run must attempt whatever happened before it: giving back what it changed
        (re-attach an original volume, start an instance it stopped, remove its lock tag) or one
        containment step of respond. They are tried even in a region (or "global") an earlier
        timeout marked unreachable: one lost answer must not leave an instance stopped without its
        volume, or a compromised key active. Each block is still bounded: once a call inside it
        times out, its later calls fail at once (and a timed-out call is not retried), as
        everywhere else. For this thread only."""
        saved = getattr(self._local, "forgiven", None)
        with self._lock:
            self._local.forgiven = dict(self._timeouts_seen)
        try:
            yield
        finally:
            self._local.forgiven = saved

    def _guard(self, where: str) -> Callable[..., None]:
        def guard(**_kwargs) -> None:  # before each HTTP attempt, retries included
            reason = self._down.get(where)
            forgiven = getattr(self._local, "forgiven", None)
            if reason is not None and not (forgiven is not None
                                           and forgiven.get(where, 0) == self._timeouts_seen[where]):
                raise RegionUnreachable(region=where, reason=reason)
            deadline = getattr(self._local, "deadline", None)
            if deadline is not None and time.monotonic() >= deadline:
                raise RunTimedOut(seconds=self.timeouts.run)

        return guard

    def _watch(self, where: str) -> Callable[..., None]:
        def watch(caught_exception=None, **_kwargs) -> None:  # after each failed attempt
            # A timeout (or a refused/unresolvable endpoint) marks the region down at its first
            # occurrence: botocore's retry then meets the guard and fails at once, instead of
            # waiting out the timeout up to max_attempts times.
            if isinstance(caught_exception, _REGION_DOWN):
                with self._lock:
                    self._down.setdefault(where, " ".join(str(caught_exception).split()))
                    self._timeouts_seen[where] += 1
            return None  # botocore's retry handler decides as before

        return watch

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

    def map_regions(self, fn: Callable[[str], R], regions: Iterable[str], *,
                    timeout: float | None = None) -> Iterator[tuple[str, R | BaseException]]:
        """Run fn(region) on a bounded pool; yield (region, result or exception) as each ends.

        With a timeout (seconds), the regions unfinished when it passes are yielded with a
        RunTimedOut and no longer waited for: their workers are daemon threads whose next AWS
        call raises RunTimedOut, and a call already in flight ends at the read timeout."""
        regions = list(regions)
        if not regions:
            return
        deadline = time.monotonic() + timeout if timeout else None
        todo: queue.Queue[str] = queue.Queue()
        for region in regions:
            todo.put(region)
        done: queue.Queue[tuple[str, R | BaseException]] = queue.Queue()

        def worker() -> None:
            self._local.deadline = deadline
            while True:
                try:
                    region = todo.get_nowait()
                except queue.Empty:
                    return
                if deadline is not None and time.monotonic() >= deadline:
                    done.put((region, RunTimedOut(seconds=timeout)))
                    continue
                try:
                    done.put((region, fn(region)))
                except Exception as exc:  # reported per region, the run goes on
                    done.put((region, exc))

        for _ in range(min(self.max_workers, len(regions))):
            threading.Thread(target=worker, name="harden-region", daemon=True).start()
        waiting = Counter(regions)
        while +waiting:
            try:
                region, result = done.get(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            waiting[region] -= 1
            yield region, result
        for region, left in (+waiting).items():
            for _ in range(left):
                yield region, RunTimedOut(seconds=timeout)


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


@functools.lru_cache(maxsize=None)
def partition_for(region: str) -> str:
    """The ARN partition of a region (aws, aws-cn, aws-us-gov, aws-iso, ...), from botocore's
    endpoint data: the lookup behind boto3's Session.get_partition_for_region, which matches a
    region botocore does not list yet by its partition's region pattern. That method is not
    called through a Session here because creating one fails when $AWS_PROFILE names a missing
    profile, and this lookup needs no credentials. Unknown to every partition: aws."""
    try:
        return _endpoint_resolver().get_partition_for_region(region)
    except botocore.exceptions.UnknownRegionError:
        return "aws"


@functools.lru_cache(maxsize=None)
def dns_suffix_for(region: str) -> str:
    """The DNS suffix of a region's partition (amazonaws.com, amazonaws.com.cn, c2s.ic.gov, ...),
    from the same botocore endpoint data: regional service principals and kms:ViaService values
    end in it (Terraform's aws_partition.dns_suffix)."""
    wanted = partition_for(region)
    for partition in _endpoint_resolver()._endpoint_data["partitions"]:
        if partition["partition"] == wanted:
            return partition["dnsSuffix"]
    return "amazonaws.com"


@functools.lru_cache(maxsize=1)
def _endpoint_resolver() -> botocore.regions.EndpointResolver:
    return botocore.regions.EndpointResolver(botocore.loaders.create_loader().load_data("endpoints"))


def parse_arn(arn: str) -> dict[str, str]:
    """partition, service, region, account and resource of an ARN (botocore's parser; the
    resource keeps its own colons). ValueError when it is not an ARN."""
    try:
        return _ARN_PARSER.parse_arn(arn)
    except botocore.utils.InvalidArnException as exc:
        raise ValueError(str(exc)) from None


def paginate(client, operation: str, result_key: str, **kwargs) -> list:
    """All items of a paginated operation (every list call goes through here)."""
    items: list = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(result_key, []))
    return items
