from __future__ import annotations

import os
from pathlib import Path

import pytest

from provisioner.baseline import load_baseline
from provisioner.render import render

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = REPO / "examples" / "harden.toml"

# Never let a developer's real credentials or profile reach a test.
for _var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ.pop(_var, None)


@pytest.fixture(scope="session")
def example_baseline():
    return load_baseline(EXAMPLE_CONFIG)


@pytest.fixture(scope="session")
def rendered(tmp_path_factory, example_baseline) -> Path:
    """A rendering of examples/harden.toml: rendered / "modules" / "<family>", "account", ..."""
    out = tmp_path_factory.mktemp("rendered")
    render(example_baseline, out)
    return out


@pytest.fixture(scope="module")
def module_dir(request, rendered) -> Path:
    """The rendered module named by the test file's FAMILY constant."""
    return rendered / "modules" / request.module.FAMILY


@pytest.fixture(scope="module")
def mod(module_dir) -> dict:
    """The rendered module parsed (python-hcl2), see tests/hcl.py."""
    from tests.hcl import load_hcl

    return load_hcl(module_dir)


# -- the AWS emulator (moto server over loopback) -------------------------------------------------

@pytest.fixture(scope="session")
def emulator():
    """One moto server per test process (each xdist worker has its own), on a free loopback
    port. Yields its endpoint URL; AWS_ENDPOINT_URL points boto3 at it, as in the sandbox."""
    import logging

    from moto.server import ThreadedMotoServer

    from provisioner.sandbox_emulator import load_aws_managed_policies

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    load_aws_managed_policies()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                                             "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    yield url
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture()
def aws(emulator):
    """A fresh emulated account for each test: the server is reset, the session is new."""
    import urllib.request

    from provisioner.aws import AwsSession

    urllib.request.urlopen(urllib.request.Request(f"{emulator}/moto-api/reset", method="POST"), timeout=10).read()
    return AwsSession(region="us-east-1", max_attempts=2)


@pytest.fixture(scope="session")
def serial_emulator(emulator):
    """The same emulated account (moto's state is per process) behind a server that answers one
    request at a time: moto is not thread-safe, and many harden processes at once against the
    threaded server occasionally get a 500 ("dictionary changed size during iteration")."""
    import threading

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture()
def zygote(tmp_path, serial_emulator):
    """Real `harden` processes against the emulator, forked from one that imported the CLI once
    (tests/fault_cli.py: kill -9 at a printed line, pauses, barriers between runs)."""
    from tests.fault_cli import Zygote

    z = Zygote(tmp_path, endpoint_url=serial_emulator)
    yield z
    z.close()


@pytest.fixture()
def fault_proxy(aws, emulator, monkeypatch):
    """A FaultProxy (tests/faultproxy.py) in front of the freshly reset emulator. AWS_ENDPOINT_URL
    points at it for the test, so clients the `aws` session creates from now on, and harden run
    as a subprocess, go through it. Hung requests are released when the test ends."""
    from tests.faultproxy import FaultProxy

    with FaultProxy(emulator) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        yield proxy
