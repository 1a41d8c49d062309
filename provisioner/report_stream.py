"""The organization report as a stream: one JSON object a line (`--format jsonl`).

    {"type": "header",  "format": "harden-organization-stream/1", "organization": ..., "shard": "1/4", ...}
    {"type": "account", "account": "111122223333", "report": {<the verify JSON contract>}, "api_calls": {...}}
    ...                                                    one line per account, in completion order
    {"type": "summary", "summary": {...}, "exit_code": 1, "complete": true}

Each account line is written with one write() and flushed to disk as soon as the account is done,
so a run killed at account 600 of 1,000 leaves 600 whole lines (and at most one torn line, which
a reader ignores and `--resume` cuts off before appending). Nothing is held in memory but the
running totals: the file, not the process, is where the organization's report accumulates. Other
formats are produced from the stream: JSON and tables account by account, SARIF/JUnit (one
document that needs every finding) assembled at the end.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

from provisioner import __version__
from provisioner.findings import Report, report_header
from provisioner.organization import Totals, merge_reports, report_from_payload, report_payload

STREAM_FORMAT = "harden-organization-stream/1"


class StreamError(ValueError):
    """A stream file that cannot be read or resumed: the message is one line for the user."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def header(organization_id: str | None, *, shard: tuple[int, int] | None = None, role: str | None = None,
           regions: list[str] | None = None, controls: list[str] | None = None) -> dict[str, Any]:
    return {"type": "header", "format": STREAM_FORMAT, "tool": "harden", "version": __version__,
            "organization": organization_id, "shard": f"{shard[0]}/{shard[1]}" if shard else None,
            "role": role, "regions": regions, "controls": controls, "started": _now()}


# -- reading -------------------------------------------------------------------------------------

@dataclass
class StreamState:
    """What a stream file holds, read line by line without keeping the accounts."""
    path: Path
    header: dict[str, Any] | None = None
    done: set[str] = field(default_factory=set)
    totals: Totals = field(default_factory=Totals)
    summary: dict[str, Any] | None = None
    valid_bytes: int = 0        # the file up to the last whole line
    torn_tail: bool = False     # a partial last line (the writer was killed mid-write)
    handle: Any = None          # scan_locked: the open file holding the stream's lock


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """(end offset, object) for every whole line; (offset, None) for a torn last line."""
    offset = 0
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                yield offset, None
                return
            offset += len(raw)
            try:
                obj = json.loads(raw)
            except ValueError:
                raise StreamError(f"{path}: line ending at byte {offset} is not JSON: not a harden "
                                  "--format jsonl report") from None
            yield offset, obj


def scan(path: Path) -> StreamState:
    """Read a stream's header, which accounts it holds and their totals (constant memory)."""
    state = StreamState(path)
    try:
        for offset, obj in _lines(path):
            if obj is None:
                state.torn_tail = True
                break
            kind = obj.get("type") if isinstance(obj, dict) else None
            if state.header is None:
                if kind != "header" or obj.get("format") != STREAM_FORMAT:
                    raise StreamError(f"{path}: not a harden --format jsonl report (no {STREAM_FORMAT} header)")
                state.header = obj
            elif kind == "account":
                summary = obj["report"].get("summary", {})
                state.done.add(obj["account"])
                state.totals.add_counts(summary, sum((obj.get("api_calls") or {}).values()),
                                        obj.get("exit_code", _exit_code(summary)))
            elif kind == "summary":
                state.summary = obj
            state.valid_bytes = offset
    except OSError as exc:
        raise StreamError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if state.header is None:
        raise StreamError(f"{path}: empty: not a harden --format jsonl report")
    return state


def scan_locked(path: Path) -> StreamState:
    """scan() a stream to resume, after taking its lock (_lock), which the state's handle then holds
    for the run's life. Read first and locked after, the stream could grow in between (the run
    writing it finishing its last accounts and its summary): the resumed run would skip too few
    accounts and cut those lines off where its read had ended."""
    try:
        handle = path.open("r+b")
    except OSError as exc:
        raise StreamError(f"--resume {path}: cannot open it to append: {exc.strerror or exc}") from None
    try:
        _lock(handle.fileno(), path)
        state = scan(path)
    except BaseException:
        handle.close()
        raise
    state.handle = handle
    return state


def _exit_code(summary: dict[str, Any]) -> int:
    return 3 if summary.get("error") else 1 if summary.get("fail") else 0


def accounts(path: Path) -> Iterator[dict[str, Any]]:
    """The account lines of a stream, one at a time (a torn last line is ignored)."""
    for _, obj in _lines(path):
        if obj is None:
            return
        if obj.get("type") == "account":
            yield obj


# -- writing -------------------------------------------------------------------------------------

class ReportWriteError(StreamError):
    """The report could not be written (a full disk): the run ran but cannot deliver (exit 3)."""


def _reported_write_errors(method):
    """A write the disk refuses (full, gone) is one line for the user, not a traceback."""
    import functools

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except OSError as exc:
            raise ReportWriteError(f"--output {getattr(self, 'output', None) or 'stdout'}: cannot write the report: "
                              f"{exc.strerror or exc}") from None
    return wrapper


class Sink:
    """Where an organization run's reports go, account by account, in the format asked for.

    jsonl: the stream itself (file or stdout), resumable; json: the `{"organization", "accounts",
    "summary"}` document, written account by account; table: one table per account as it ends
    (`table(report, file)`, file None for stdout); anything else (sarif, junit, ...): spooled to a stream beside the output and assembled by
    `emit(report)` at the end (those formats are single documents over every finding).
    """

    @_reported_write_errors
    def __init__(self, fmt: str, output: Path | None, head: dict[str, Any], *,
                 emit: Callable[[Report], None], table: Callable[[Report, TextIO | None], None] | None = None,
                 stdout: TextIO | None = None, resume: StreamState | None = None,
                 min_severity: str | None = None, fail_on: str | None = None) -> None:
        """min_severity leaves less severe findings out of what is written; fail_on decides
        which failures make an account (and the run) exit 1. The totals count every finding."""
        import sys

        self.fmt, self.output, self.head = fmt, output, head
        self.min_severity, self.fail_on = min_severity, fail_on
        self._emit, self._table = emit, table
        self.totals = resume.totals if resume else Totals()
        self._first_json = True
        self._spool: Path | None = None
        stdout = stdout or sys.stdout
        if fmt == "jsonl":
            if resume is not None:
                self._handle = _reopen_for_append(resume)
            else:
                self._handle = _open_exclusive(output) if output else stdout
                self._write_line(head)
        elif fmt == "json":
            self._handle = self._open_staged(output) if output else stdout
            top = {**report_header(datetime.now(timezone.utc)), "organization": head.get("organization")}
            self._handle.write("{\n" + "".join(f"  {json.dumps(k)}: {json.dumps(v)},\n" for k, v in top.items())
                               + '  "accounts": [')
        elif fmt == "table":
            self._handle = self._open_staged(output) if output else None
        else:
            import tempfile

            fd, name = tempfile.mkstemp(prefix=".harden-spool-", suffix=".jsonl",
                                        dir=str(output.parent) if output else None)
            self._spool = Path(name)
            self._handle = os.fdopen(fd, "w", encoding="utf-8")
            self._write_line(head)

    def _open_staged(self, output: Path) -> TextIO:
        """A json or table report is written beside the target (locked, as a stream is) and
        renamed into place at the end: a run killed half-way leaves the previous report whole,
        not a truncated document, and a second run at once is refused. A pipe or device is
        written in place."""
        self._final = None
        if output.exists() and not output.is_file():
            return _open_exclusive(output)
        self._final = Path(os.path.realpath(output))
        return _open_exclusive(_staging(self._final), output)

    def _finish_staged(self) -> None:
        """Rename the whole report into place while still holding its lock (a run that opened the
        staging name meanwhile finds it renamed away and starts a file of its own), then close."""
        self._handle.flush()
        if self._final is not None:
            os.replace(_staging(self._final), self._final)
        self._handle.close()

    def _write_line(self, obj: dict[str, Any]) -> None:
        self._handle.write(json.dumps(obj, default=str, separators=(",", ":")) + "\n")
        self._handle.flush()
        if self._handle.fileno() > 2:  # a file: make the line durable before the next account starts
            try:
                os.fsync(self._handle.fileno())
            except OSError:
                pass

    @_reported_write_errors
    def add(self, report: Report) -> None:
        code = report.exit_code(self.fail_on)
        self.totals.add(report, self.fail_on)
        report = report.filtered(self.min_severity)
        if self.fmt in ("jsonl",) or self._spool is not None:
            self._write_line({"type": "account", **report_payload(report, code)})
        elif self.fmt == "json":
            body = json.dumps(report.to_dict(), indent=2, default=str).replace("\n", "\n    ")
            self._handle.write(("\n    " if self._first_json else ",\n    ") + body)
            self._handle.flush()
            self._first_json = False
        elif self._table is not None:
            self._table(report, self._handle)

    @_reported_write_errors
    def close(self) -> int:
        """Finish the document; returns the run's exit code (3 > 1 > 0 over the accounts)."""
        code = self.totals.exit_code()
        summary = {"type": "summary", "summary": self.totals.summary(), "exit_code": code,
                   "complete": True, "finished": _now()}
        if self.fmt == "jsonl":
            self._write_line(summary)
        elif self.fmt == "json":
            self._handle.write(("\n  " if not self._first_json else "") + '],\n  "summary": '
                               + json.dumps(self.totals.summary(), indent=2).replace("\n", "\n  ") + "\n}\n")
            if self.output is not None:
                self._finish_staged()
                return code
            self._handle.flush()
        elif self.fmt == "table" and self._handle is not None:
            self._finish_staged()
            return code
        elif self._spool is not None:
            self._handle.close()
            try:
                reports = (report_from_payload(a) for a in accounts(self._spool))
                self._emit(merge_reports(self.head.get("organization"), reports))
            finally:
                self._spool.unlink(missing_ok=True)
            return code
        if self._handle is not None and self.output is not None:
            self._handle.close()
        return code


def _lock(fd: int, path: Path) -> None:
    """An exclusive flock for the run's life (the kernel drops it when the process ends, kill -9
    included): a second run writing the same report, or resuming the same stream, would
    interleave its accounts with ours or truncate them. It is refused instead."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ReportWriteError(f"--output {path}: another harden run is writing it; "
                               "wait for it to end (or write elsewhere)") from None
    except OSError:  # a file system without flock: go on unlocked
        pass


def _staging(final: Path) -> Path:
    return final.with_name(f".{final.name}.harden-partial")


def _open_exclusive(path: Path, shown: Path | None = None) -> TextIO:
    """Open a report for writing, locked (_lock) before anything in it is cut; `shown`: the
    --output a staging file stands for, named in the message. A file renamed away between our
    open and our lock (the run that held it has just put it in place) is not ours to cut: the
    name is opened again."""
    import stat

    while True:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
        try:
            _lock(fd, shown or path)
        except ReportWriteError:
            os.close(fd)
            raise
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):  # /dev/stdout, a pipe: nothing to cut
            break
        try:
            now = os.stat(path)
        except FileNotFoundError:
            now = None
        if now is not None and (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino):
            os.ftruncate(fd, 0)
            break
        os.close(fd)
    return os.fdopen(fd, "w", encoding="utf-8")


def _reopen_for_append(state: StreamState):
    """Cut a torn last line off and append after the last whole one. A finished stream (it has
    its summary line) is reopened without the summary: the resumed run writes a new one. The lock
    is scan_locked's when the state came from it (it must be: the offsets are the locked read's)."""
    handle = state.handle
    if handle is None:
        handle = state.path.open("r+b")
        try:
            _lock(handle.fileno(), state.path)
        except ReportWriteError:
            handle.close()
            raise
    end = state.valid_bytes
    if state.summary is not None:
        end = _offset_before_summary(state.path)
    handle.truncate(end)
    handle.seek(end)
    import io

    return io.TextIOWrapper(handle, encoding="utf-8", write_through=True)


def _offset_before_summary(path: Path) -> int:
    before = 0
    for offset, obj in _lines(path):
        if obj is None or obj.get("type") == "summary":
            return before
        before = offset
    return before


def check_resumable(state: StreamState, organization_id: str | None, shard: tuple[int, int] | None) -> None:
    head = state.header or {}
    if head.get("organization") != organization_id:
        raise StreamError(f"--resume {state.path}: it is a report of organization {head.get('organization')}, "
                          f"not {organization_id}")
    wanted = f"{shard[0]}/{shard[1]}" if shard else None
    if head.get("shard") != wanted:
        raise StreamError(f"--resume {state.path}: it was written for shard {head.get('shard') or 'none'}, "
                          f"this run is shard {wanted or 'none'}")


# -- merging shards ------------------------------------------------------------------------------

def _missing_shards(states: list[StreamState]) -> str | None:
    """What is missing when the files are shards of a split (`--shard I/N`) that do not cover it:
    1..N each once, every file of the same N. None when they do, or when no file is a shard."""
    shards = [(s.path, s.header.get("shard")) for s in states]
    if not any(shard for _, shard in shards):
        return None
    parts: dict[int, set[int]] = {}
    for path, shard in shards:
        try:
            index, total = (int(x) for x in str(shard).split("/"))
        except ValueError:
            return f"{path} is not a shard (its header says shard {shard}): the files are not one split run"
        parts.setdefault(total, set()).add(index)
    if len(parts) > 1:
        return "the files are shards of different splits (" + ", ".join(f"/{n}" for n in sorted(parts)) + \
            "): accounts may be missing"
    (total, seen), = parts.items()
    missing = [f"{i}/{total}" for i in range(1, total + 1) if i not in seen]
    if missing:
        return f"shard {', '.join(missing)} of the run {'is' if len(missing) == 1 else 'are'} not among the " \
            "files: their accounts are missing from this report"
    return None


def merge(paths: list[Path], sink_factory: Callable[[dict[str, Any]], Sink],
          warn: Callable[[str], None]) -> int:
    """Combine the streams of a sharded (or resumed, or split) run into one report through a Sink;
    returns the exit code by the usual rules, 3 when a part never finished (it would hide the
    accounts it did not reach)."""
    states = [scan(p) for p in paths]
    orgs = {s.header.get("organization") for s in states}
    if len(orgs) > 1:
        raise StreamError("report merge: the files are reports of different organizations: "
                          + ", ".join(sorted(str(o) for o in orgs)))
    seen: dict[str, Path] = {}
    for state in states:
        for account in state.done:
            if account in seen:
                raise StreamError(f"report merge: account {account} is in both {seen[account]} and {state.path}")
            seen[account] = state.path
    incomplete = [s.path for s in states if s.summary is None]
    for path in incomplete:
        warn(f"{path} has no summary line: that run was interrupted, so accounts it did not reach are "
             "missing (finish it with `harden verify ... --resume` on that file)")
    if gap := _missing_shards(states):  # the accounts of a shard never given are silently absent
        warn(gap)
        incomplete.append(gap)
    head = {**states[0].header, "shard": None, "merged_from": [str(p) for p in paths], "started": _now()}
    sink = sink_factory(head)
    for state in states:
        for account in accounts(state.path):
            sink.add(report_from_payload(account))
    code = sink.close()
    return 3 if incomplete else code
