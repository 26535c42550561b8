"""Shared fixtures: a real `sluice serve` process and boto3 clients pointed at it.

Each test gets an account of its own (the 12-digit access key is the account in emulator
mode), so tests share one server without resetting it.
"""
import itertools
import json
import os
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

REPO = Path(__file__).resolve().parents[2]
BINARY = os.environ.get("SLUICE_BIN", str(REPO / "target" / "debug" / "sluice"))
REGION = "us-east-1"
_accounts = itertools.count(1)


class Server:
    """A running server; stops when its stdin closes."""

    def __init__(self, data_dir, *extra):
        self.process = subprocess.Popen(
            [BINARY, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--exit-with-stdin", *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "SLUICE_LOG": "warn"},
        )
        line = self.process.stdout.readline().decode()
        assert line.startswith("sluice listening on "), line
        self.endpoint = line.split()[-1]
        self.port = int(self.endpoint.rsplit(":", 1)[1])

    def stop(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=10)

    def kill9(self):
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def server():
    with tempfile.TemporaryDirectory() as data_dir:
        running = Server(data_dir)
        yield running
        running.stop()


@pytest.fixture
def account():
    return f"{os.getpid() % 1000000:06d}{next(_accounts):06d}"


def logs_client(endpoint, access_key, secret="any-secret", validate=True):
    return boto3.client(
        "logs",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, parameter_validation=validate),
    )


@pytest.fixture
def logs(server, account):
    return logs_client(server.endpoint, account)


@pytest.fixture
def logs_unchecked(server, account):
    """A client that sends what botocore would refuse, so the server's own checks are tested."""
    return logs_client(server.endpoint, account, validate=False)


def signed_request(endpoint, target, body, access_key="111111111111", secret="x", headers=None, service="logs"):
    """Sends a SigV4-signed JSON 1.1 request with an arbitrary body; returns (status, headers, body)."""
    request = AWSRequest(
        method="POST",
        url=endpoint + "/",
        data=body if isinstance(body, bytes) else body.encode(),
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1", **(headers or {})},
    )
    SigV4Auth(Credentials(access_key, secret), service, REGION).add_auth(request)
    return send(request.method, request.url, request.body, dict(request.headers))


def send(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, _lower(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers), error.read().decode()


def _lower(headers):
    return {name.lower(): value for name, value in headers.items()}


def json_body(text):
    return json.loads(text) if text else {}
