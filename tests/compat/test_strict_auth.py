"""Strict (production) mode, through botocore's own signer."""
import datetime
from unittest import mock

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import Server, json_body, logs_client, send, signed_request

CONFIG = """
[auth]
mode = "strict"

[[auth.credentials]]
access_key_id = "AKIDSTRICT"
secret_access_key = "strict-secret"
account_id = "123456789012"
"""


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    directory = tmp_path_factory.mktemp("strict")
    (directory / "sluice.toml").write_text(CONFIG)
    server = Server(directory / "data", "--config", str(directory / "sluice.toml"))
    yield server
    server.stop()


def code_of(call):
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_keys_and_signatures(strict):
    assert logs_client(strict.endpoint, "AKIDSTRICT", "strict-secret").describe_destinations()["destinations"] == []
    assert code_of(logs_client(strict.endpoint, "AKIDSTRICT", "wrong").describe_destinations) == ("InvalidSignatureException", 403)
    assert code_of(logs_client(strict.endpoint, "AKIDOTHER", "strict-secret").describe_destinations)[0] == "UnrecognizedClientException"


def test_stale_requests_are_refused(strict):
    stale = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
    with mock.patch("botocore.auth.get_current_datetime", return_value=stale.replace(tzinfo=None)):
        status, _, body = signed_request(strict.endpoint, "Logs_20140328.DescribeDestinations", "{}",
                                         access_key="AKIDSTRICT", secret="strict-secret")
    assert status == 403
    assert json_body(body)["__type"] == "InvalidSignatureException"
    assert json_body(body)["message"].startswith("Signature expired: ")


def test_presigned_requests(strict):
    request = AWSRequest(method="POST", url=strict.endpoint + "/", data=b"{}",
                         headers={"X-Amz-Target": "Logs_20140328.DescribeDestinations",
                                  "Content-Type": "application/x-amz-json-1.1"})
    SigV4QueryAuth(Credentials("AKIDSTRICT", "strict-secret"), "logs", "us-east-1", expires=60).add_auth(request)
    headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
    status, _, body = send("POST", request.url, request.body, headers)
    assert status == 200, body
    assert json_body(body) == {"destinations": []}
    tampered = request.url.replace("X-Amz-Expires=60", "X-Amz-Expires=61")
    status, _, body = send("POST", tampered, request.body, headers)
    assert (status, json_body(body)["__type"]) == (403, "InvalidSignatureException")


def test_reset_is_refused(strict):
    status, _, _ = send("POST", strict.endpoint + "/_sluice/reset", b"")
    assert status == 403
