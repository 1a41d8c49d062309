"""Run the real `harden` CLI in a subprocess with a fault switched on by an environment variable.
Reusable by any test that needs a real process to die, wait or race (python -m tests.fault_cli ARGS):

- HARDEN_FAULT_KILL_AT_LINE=K: the process sends itself SIGKILL right after it has written its
  K-th line to stderr (every progress line counts), i.e. kill -9 exactly at that step boundary:
  no `finally`, no atexit, no flush of anything else.
- HARDEN_FAULT_KILL_AT_CALL=module:function:N: SIGKILL right before the N-th call of that function
  (e.g. os:replace:3, the third rename), for faults between two lines.
- HARDEN_FAULT_PAUSE=Operation:PATH: before its first AWS call of Operation (e.g. StartInstances)
  the process creates PATH.reached and waits until PATH exists (60 s at most), so a test can run
  something else while it holds its place.
- HARDEN_FAULT_BARRIER=Operation:DIR:N: before its first call of Operation the process creates
  DIR/<pid> and waits until N processes are there: N runs reach the same point together.
- HARDEN_FAULT_DONE=PATH: the process creates PATH when the command has finished (to release
  another run's HARDEN_FAULT_PAUSE).

The hooks wrap botocore's BaseClient._make_api_call and sys.stderr; the product code is unchanged.

`python -m tests.fault_cli --zygote` imports the CLI once and then, for each JSON request on stdin
({"args": [...], "env": {...}, "stdout": PATH, "stderr": PATH}), forks a child that runs
`harden ARGS` with those variables (and so those faults) and answers {"code": N} or
{"signal": N}: a real process per run, without paying the interpreter's start-up each time.
A JSON list of requests runs them all at once (concurrent runs) and answers a list.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import signal
import sys
import time
from pathlib import Path

WAIT_LIMIT = 60.0


def _wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + WAIT_LIMIT
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"fault_cli: gave up waiting for {what}")
        time.sleep(0.01)


class _KillAtLine(io.TextIOBase):
    def __init__(self, stream, limit: int) -> None:
        self.stream, self.limit, self.lines = stream, limit, 0

    def write(self, text: str) -> int:
        for piece in text.splitlines(keepends=True):
            self.stream.write(piece)
            if piece.endswith("\n"):
                self.lines += 1
                if self.lines >= self.limit:
                    self.stream.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.stream.fileno()


def _before_operation(operation: str, action) -> None:
    import botocore.client

    original = botocore.client.BaseClient._make_api_call
    fired: list[bool] = []

    def call(self, operation_name, api_params):
        if operation_name == operation and not fired:
            fired.append(True)
            action()
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = call


def install() -> None:
    kill_at = os.environ.get("HARDEN_FAULT_KILL_AT_LINE")
    if kill_at:
        sys.stderr = _KillAtLine(sys.stderr, int(kill_at))
    kill_call = os.environ.get("HARDEN_FAULT_KILL_AT_CALL")
    if kill_call:
        import importlib

        module_name, name, count = kill_call.split(":")
        module = importlib.import_module(module_name)
        original, calls = getattr(module, name), []

        def counted(*args, **kwargs):
            calls.append(1)
            if len(calls) >= int(count):
                sys.stderr.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)

        setattr(module, name, counted)
    pause = os.environ.get("HARDEN_FAULT_PAUSE")
    if pause:
        operation, path = pause.split(":", 1)

        def hold() -> None:
            Path(path + ".reached").touch()
            _wait_for(lambda: Path(path).exists(), path)

        _before_operation(operation, hold)
    barrier = os.environ.get("HARDEN_FAULT_BARRIER")
    if barrier:
        operation, folder, count = barrier.split(":", 2)

        def meet() -> None:
            Path(folder, str(os.getpid())).touch()
            _wait_for(lambda: len(list(Path(folder).iterdir())) >= int(count), f"{count} processes in {folder}")

        _before_operation(operation, meet)


REPO = Path(__file__).resolve().parent.parent


class Zygote:
    """One process that forks a `harden` run per request (see tests/fault_cli.py)."""

    def __init__(self, tmp: Path, endpoint_url: str | None = None) -> None:
        self.tmp, self.n = tmp, 0
        env = {**os.environ, "COLUMNS": "200", **({"AWS_ENDPOINT_URL": endpoint_url} if endpoint_url else {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fault_cli", "--zygote"], cwd=REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def _request(self, args, env) -> dict:
        self.n += 1
        return {"args": list(args), "env": env, "stdout": str(self.tmp / f"{self.n}.out"),
                "stderr": str(self.tmp / f"{self.n}.err")}

    def _ask(self, payload):
        self.proc.stdin.write(json.dumps(payload) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def run(self, *args: str, **env: str) -> tuple[dict, str, str]:
        request = self._request(args, env)
        answer = self._ask(request)
        return answer, Path(request["stdout"]).read_text(), Path(request["stderr"]).read_text()

    def run_together(self, runs: list[tuple[list[str], dict[str, str]]]) -> list[tuple[dict, str, str]]:
        """Several runs at the same time, each its own process."""
        requests = [self._request(args, env) for args, env in runs]
        answers = self._ask(requests)
        return [(a, Path(r["stdout"]).read_text(), Path(r["stderr"]).read_text()) for a, r in zip(answers, requests)]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)



def _run_cli(args: list[str]) -> int:
    from provisioner.cli import app

    try:
        app(args, prog_name="harden", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def _child(request: dict) -> None:
    os.environ.update(request.get("env", {}))
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), line_buffering=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", buffering=0), line_buffering=True)
    install()
    code = _run_cli(request["args"])
    if os.environ.get("HARDEN_FAULT_DONE"):
        Path(os.environ["HARDEN_FAULT_DONE"]).touch()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _share_botocore_models() -> None:
    """botocore parses each service's JSON model once per session (a third of a second for EC2):
    parse them once here, before the forks, and let every session of every child reuse them."""
    import boto3
    import botocore.loaders

    for name in ("load_service_model", "load_data"):
        original = getattr(botocore.loaders.Loader, name)
        cache: dict = {}

        def cached(self, *args, _original=original, _cache=cache, **kwargs):
            key = (args, tuple(sorted(kwargs.items())))
            if key not in _cache:
                _cache[key] = _original(self, *args, **kwargs)
            return _cache[key]

        setattr(botocore.loaders.Loader, name, cached)
    session = boto3.Session(region_name="us-east-1")
    for service in ("ec2", "sts", "kms", "sns", "cloudwatch"):
        session.client(service, endpoint_url="http://127.0.0.1:9")


def zygote() -> None:
    import provisioner.cli  # noqa: F401  (imported once, before any fork)
    import provisioner.migrate  # noqa: F401

    _share_botocore_models()

    for line in sys.stdin:
        requests = json.loads(line)  # one request, or a list of them to run at the same time
        pids = []
        for request in requests if isinstance(requests, list) else [requests]:
            pid = os.fork()
            if pid == 0:
                try:
                    _child(request)
                finally:
                    os._exit(70)
            pids.append(pid)
        answers = []
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            answers.append({"signal": os.WTERMSIG(status)} if os.WIFSIGNALED(status)
                           else {"code": os.WEXITSTATUS(status)})
        sys.stdout.write(json.dumps(answers if isinstance(requests, list) else answers[0]) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1:] == ["--zygote"]:
        zygote()
    else:
        install()
        status = _run_cli(sys.argv[1:])
        if os.environ.get("HARDEN_FAULT_DONE"):
            Path(os.environ["HARDEN_FAULT_DONE"]).touch()
        sys.exit(status)
