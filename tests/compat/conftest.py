"""Shared fixtures for the Python compatibility suite: real `sluice serve` processes, boto3
clients pointed at them, and a `raw` helper for requests that real clients refuse to send.

Tests share one emulator-mode server for the whole session. They are isolated by account,
not by resetting: in emulator mode a 12-digit access key *is* the account, so every test
takes fresh account ids from `new_account()` (or the `account` fixture).

The binary is $SLUICE_BIN (relative paths are taken from the repository root) or
target/debug/sluice; build it with `cargo build` first.
"""
import datetime
import itertools
import json
import os
import selectors
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import boto3
import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
LOGS_TARGET_PREFIX = "Logs_20140328"
JSON_11 = "application/x-amz-json-1.1"
STARTUP_SECONDS = 30


def binary_path():
    configured = os.environ.get("SLUICE_BIN")
    if configured:
        path = Path(configured)
        return path if path.is_absolute() else REPO / path
    return REPO / "target" / "debug" / "sluice"


BINARY = binary_path()

# Account ids handed to tests. 42xxxxxxxxxx stays clear of the fixed ids other files use.
_accounts = itertools.count(1)


def new_account():
    """A 12-digit account id no other test of this session uses."""
    return f"{420000000000 + next(_accounts):012d}"


# --------------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------------


class Server:
    """A `sluice serve` process on 127.0.0.1:<ephemeral>; it stops when its stdin closes."""

    def __init__(self, data_dir, *extra_args):
        if not BINARY.exists():
            raise RuntimeError(f"{BINARY} does not exist: run `cargo build` in {REPO} (or set SLUICE_BIN)")
        self.data_dir = Path(data_dir)
        self.args = [str(BINARY), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir),
                     "--exit-with-stdin", *extra_args]
        env = {k: v for k, v in os.environ.items()
               if k not in ("SLUICE_CONFIG", "SLUICE_AUTH", "SLUICE_LISTEN", "SLUICE_DATA_DIR")}
        env.setdefault("SLUICE_LOG", "warn")
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._stderr, env=env)
        self.pid = self.process.pid
        try:
            line = self._first_line()
            prefix = "sluice listening on "
            if not line.startswith(prefix):
                raise RuntimeError(f"unexpected first stdout line {line!r}")
            self.endpoint = line[len(prefix):].strip()
            self.port = int(self.endpoint.rsplit(":", 1)[1])
            # Keep draining stdout so the server can never block on a full pipe.
            threading.Thread(target=self.process.stdout.read, daemon=True).start()
            self._wait_healthy()
        except Exception:
            self.kill9()
            raise

    def _first_line(self):
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if selector.select(timeout=0.1):
                line = self.process.stdout.readline().decode()
                if line:
                    return line
            if self.process.poll() is not None:
                break
        raise RuntimeError(f"server did not start (exit {self.process.poll()}): {self.stderr()}")

    def _wait_healthy(self):
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                status, _, body = send("GET", self.endpoint + "/_sluice/health", timeout=2)
                if status == 200 and json.loads(body).get("status") == "ready":
                    return
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"server never became healthy: {self.stderr()}")
            time.sleep(0.02)

    def stderr(self):
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stop(self):
        """Graceful stop: closes stdin, as the harness contract says."""
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()
        self._stderr.close()

    def kill9(self):
        """SIGKILL, no chance to flush or shut down."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def server():
    """The shared emulator-mode server (an object with `.endpoint`)."""
    with tempfile.TemporaryDirectory(prefix="sluice-compat-") as data_dir:
        running = Server(data_dir)
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="session")
def endpoint(server):
    """The shared server's endpoint, e.g. http://127.0.0.1:PORT."""
    return server.endpoint


@pytest.fixture
def account():
    return new_account()


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------


def client(endpoint, account, service="logs", secret="any-secret", validate=True):
    """A boto3 client whose access key is `account` (the account, in emulator mode)."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=account,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, parameter_validation=validate),
    )


def logs_client(endpoint, access_key, secret="any-secret", validate=True):
    return client(endpoint, access_key, "logs", secret, validate)


@pytest.fixture
def logs(endpoint, account):
    return client(endpoint, account)


@pytest.fixture
def logs_unchecked(endpoint, account):
    """A client that sends what botocore would refuse, so that the server's own checks run."""
    return client(endpoint, account, validate=False)


# --------------------------------------------------------------------------------------------
# Raw requests
# --------------------------------------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    headers: dict  # lower-cased names
    text: str
    json: dict = field(default=None)

    @property
    def error_type(self):
        return (self.json or {}).get("__type")


def send(method, url, body=None, headers=None, timeout=10):
    """Sends exactly this request through urllib; returns (status, lower-cased headers, text)."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _lower(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers), error.read().decode()


def _lower(headers):
    return {name.lower(): value for name, value in headers.items()}


def _parse(status, headers, text):
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    return RawResponse(status, headers, text, parsed)


def raw(endpoint, operation=None, body="{}", *, account="111111111111", secret="x", headers=None,
        method="POST", path="/", target=None, sign=True, service="logs", region=REGION, when=None):
    """Sends a JSON 1.1 request, SigV4-signed by botocore unless `sign=False`.

    `operation` names a Logs operation (the X-Amz-Target becomes Logs_20140328.<operation>);
    `target` sets the X-Amz-Target header verbatim instead. `body` may be any str or bytes,
    `headers` override or add headers (they are signed), and `when` signs at another time.
    """
    data = body.encode() if isinstance(body, str) else body
    all_headers = {"Content-Type": JSON_11}
    if target is None and operation is not None:
        target = f"{LOGS_TARGET_PREFIX}.{operation}"
    if target is not None:
        all_headers["X-Amz-Target"] = target
    all_headers.update(headers or {})
    url = endpoint + path
    if sign:
        request = AWSRequest(method=method, url=url, data=data, headers=all_headers)
        signer = SigV4Auth(Credentials(account, secret), service, region)
        if when is None:
            signer.add_auth(request)
        else:
            with mock.patch.object(botocore.auth, "get_current_datetime", return_value=naive_utc(when)):
                signer.add_auth(request)
        all_headers = dict(request.headers.items())
        url = request.url
    return _parse(*send(method, url, data, all_headers))


def naive_utc(moment):
    """botocore's clock returns naive UTC datetimes."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return moment


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)
