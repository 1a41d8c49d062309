"""A fault-injecting loopback proxy in front of the emulator, for tests that break AWS on purpose.

    with FaultProxy(emulator_url) as proxy:
        proxy.add("deny", action="DescribeFlowLogs", region="eu-west-1")
        proxy.add("throttle", service="ec2", times=2)          # the first two matching calls only
        proxy.add("reset", action="DescribeVolumes")             # the connection is cut (TCP RST)
        proxy.add("hang", action="DescribeFlowLogs")             # never answered until released
        proxy.add("drop", action="CreateKey", times=1)           # done by the emulator, answer lost
        ... point AWS_ENDPOINT_URL at proxy.url and run harden ...

Every request goes through real sockets, so botocore's own timeouts, retries and response
parsing run as they would against AWS. A request is matched by the service and region of its
SigV4 credential scope and by its operation name (the `X-Amz-Target` header, the query `Action`
parameter, or the path of the RPC v2 CBOR protocol); rules are tried in the order they were added
and the first match wins. Errors are answered in the protocol of the service (EC2 and query XML,
JSON, CBOR, REST-XML), with the codes AWS uses for that service.

`reset` cuts the connection before the request reaches the emulator (nothing happened); `drop`
forwards it, lets the emulator do it, reads the answer and then cuts the connection instead of
replying (TCP RST): the call took effect but the caller never learns it, as when a connection
breaks on the way back. botocore treats both alike and retries, so a retried `drop` shows what a
non-idempotent call does when AWS runs it twice.

A hang is bounded: it waits until `release()` or `stop()` (the context manager and the
`fault_proxy` fixture call it when the test ends), then drops the connection.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import struct
import sys
import threading
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Fault = Literal["deny", "throttle", "reset", "hang", "drop"]
FAULTS = ("deny", "throttle", "reset", "hang", "drop")

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
_CBOR_PATH = re.compile(r"/service/[^/]+/operation/([A-Za-z0-9]+)")

# (HTTP status, code) per fault and error dialect, as AWS answers them.
_CODES = {
    "deny": {"ec2": (403, "UnauthorizedOperation"), "json": (400, "AccessDeniedException"),
             "query": (403, "AccessDenied"), "rest-xml": (403, "AccessDenied")},
    "throttle": {"ec2": (503, "RequestLimitExceeded"), "json": (400, "ThrottlingException"),
                 "query": (400, "Throttling"), "rest-xml": (503, "SlowDown")},
}


@dataclass
class Rule:
    fault: Fault
    service: str = "*"
    action: str = "*"
    region: str = "*"
    times: int | None = None  # None: every matching request
    hits: int = 0

    def matches(self, service: str, action: str, region: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return all(want in ("*", got) for want, got in
                   ((self.service, service), (self.action, action), (self.region, region)))


@dataclass(frozen=True)
class Call:
    service: str
    action: str
    region: str
    fault: str | None  # None: forwarded to the emulator (and so is a "drop", whose answer is lost)
    body: bytes = b""  # the request as sent: a retry can be compared with the call it repeats


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.rules: list[Rule] = []
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    def add(self, fault: Fault, *, service: str = "*", action: str = "*", region: str = "*",
            times: int | None = None) -> Rule:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}: expected one of {FAULTS}")
        rule = Rule(fault, service, action, region, times)
        with self._lock:
            self.rules.append(rule)
        return rule

    def release(self) -> None:
        """Let every hung request go (its connection is then dropped)."""
        self._released.set()

    def faulted(self, fault: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.fault and (fault is None or c.fault == fault)]

    def count(self) -> Counter:
        """(service, action, fault or 'ok') -> requests seen, retries included."""
        with self._lock:
            return Counter((c.service, c.action, c.fault or "ok") for c in self.calls)

    def _decide(self, service: str, action: str, region: str, body: bytes = b"") -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(service, action, region):
                    rule.hits += 1
                    self.calls.append(Call(service, action, region, rule.fault, body))
                    return rule
            self.calls.append(Call(service, action, region, None, body))
            return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A client that gave up (its read timeout) closes the socket we answer on: expected here.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def _dialect(service: str, headers, action_from_body: bool) -> str:
    if service == "ec2":
        return "ec2"
    if headers.get("smithy-protocol") == "rpc-v2-cbor":
        return "cbor"
    if headers.get("X-Amz-Target"):
        return "json"
    if action_from_body:
        return "query"
    return "rest-xml"


def _cbor_text(text: str) -> bytes:
    data = text.encode()
    if len(data) < 24:
        return bytes([0x60 | len(data)]) + data
    if len(data) < 256:
        return bytes([0x78, len(data)]) + data
    return bytes([0x79]) + struct.pack(">H", len(data)) + data


def _cbor_map(values: dict[str, str]) -> bytes:
    body = bytes([0xA0 | len(values)])
    for key, value in values.items():
        body += _cbor_text(key) + _cbor_text(value)
    return body


def _error(dialect: str, fault: str, action: str) -> tuple[int, dict[str, str], bytes]:
    status, code = _CODES[fault]["json" if dialect == "cbor" else dialect]
    message = f"{fault} injected by the test proxy on {action}"
    if dialect == "ec2":
        return status, {"Content-Type": "text/xml"}, (
            f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code>"
            f"<Message>{message}</Message></Error></Errors><RequestID>fault</RequestID></Response>").encode()
    if dialect == "query":
        return status, {"Content-Type": "text/xml"}, (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>fault</RequestId></ErrorResponse>").encode()
    if dialect == "json":
        return status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code}, \
            json.dumps({"__type": code, "message": message}).encode()
    if dialect == "cbor":
        return status, {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}, \
            _cbor_map({"__type": code, "message": message})
    return status, {"Content-Type": "application/xml"}, (
        f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>fault</RequestId></Error>").encode()


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade"}


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects

        def log_message(self, *_args) -> None:  # quiet
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _identify(self, body: bytes) -> tuple[str, str, str, bool]:
            scope = _SCOPE.search(self.headers.get("Authorization", ""))
            region, service = (scope.group(1), scope.group(2)) if scope else ("?", "?")
            target = self.headers.get("X-Amz-Target")
            if target:
                return service, target.rsplit(".", 1)[-1], region, False
            cbor = _CBOR_PATH.search(self.path)
            if cbor:
                return service, cbor.group(1), region, False
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace")) if body and b"=" in body else {}
            action = (form.get("Action") or query.get("Action") or [None])[0]
            if action:
                return service, action, region, True
            return service, f"{self.command} {urllib.parse.urlsplit(self.path).path}", region, False

        def _handle(self) -> None:
            body = self._body()
            service, action, region, query = self._identify(body)
            rule = proxy._decide(service, action, region, body)
            if rule is None:
                return self._forward(body)
            if rule.fault == "hang":
                proxy._released.wait()
                self.close_connection = True
                return
            if rule.fault == "drop":
                self._upstream(body)  # the emulator does it; its answer goes nowhere
                return self._reset()
            if rule.fault == "reset":
                return self._reset()
            status, headers, payload = _error(_dialect(service, self.headers, query), rule.fault, action)
            self._reply(status, headers, payload)

        def _reset(self) -> None:
            # SO_LINGER 0: close() sends a TCP RST, what a dropped connection looks like.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True

        def _upstream(self, body: bytes) -> tuple[int, dict[str, str], bytes, str | None]:
            """The emulator's answer to this request: status, headers, payload, HEAD's length."""
            upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
                length = response.getheader("Content-Length") if self.command == "HEAD" else None
                return response.status, {k: v for k, v in response.getheaders()
                                         if k.lower() not in _HOP_BY_HOP}, payload, length
            finally:
                upstream.close()

        def _forward(self, body: bytes) -> None:
            self._reply(*self._upstream(body))

        def _reply(self, status: int, headers: dict[str, str], payload: bytes, length: str | None = None) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", length or str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

    return Handler
