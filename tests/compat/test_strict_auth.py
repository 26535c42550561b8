"""Strict (production) mode: SigV4 signatures verified against configured credentials, checked
with botocore's own signers (header and presigned)."""
import datetime
import json
from unittest import mock

import botocore.auth
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import JSON_11, REGION, Server, client, naive_utc, raw, send, utcnow

KEY, SECRET, ACCOUNT = "AKIDSTRICT", "secret", "123456789012"
CONFIG = f"""
[auth]
mode = "strict"

[[auth.credentials]]
access_key_id = "{KEY}"
secret_access_key = "{SECRET}"
account_id = "{ACCOUNT}"
"""


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    directory = tmp_path_factory.mktemp("strict")
    (directory / "sluice.toml").write_text(CONFIG)
    server = Server(directory / "data", "--auth", "strict", "--config", str(directory / "sluice.toml"))
    try:
        # The stream the destinations point at: AWS refuses a destination without it.
        client(server.endpoint, KEY, "kinesis", secret=SECRET).create_stream(StreamName="s", ShardCount=1)
        yield server
    finally:
        server.stop()


def error_of(call, **kwargs):
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def put_destination(logs, name):
    return logs.put_destination(destinationName=name, targetArn=f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/s",
                                roleArn=f"arn:aws:iam::{ACCOUNT}:role/r")["destination"]


def test_health_says_strict(strict):
    status, _, text = send("GET", strict.endpoint + "/_sluice/health")
    assert status == 200 and json.loads(text)["auth"] == "strict"


def test_correct_key_and_secret_work(strict):
    logs = client(strict.endpoint, KEY, secret=SECRET)
    created = put_destination(logs, "strict-ok")
    # The account is the configured one, not derived from the key.
    assert created["arn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:destination:strict-ok"
    assert "strict-ok" in [d["destinationName"] for d in logs.describe_destinations()["destinations"]]


def test_wrong_secret_is_refused(strict):
    logs = client(strict.endpoint, KEY, secret="not-the-secret")
    code, status, _ = error_of(logs.describe_destinations)
    assert (code, status) == ("InvalidSignatureException", 403)
    code, status, _ = error_of(put_destination, logs=logs, name="forged")
    assert (code, status) == ("InvalidSignatureException", 403)
    good = client(strict.endpoint, KEY, secret=SECRET)
    assert "forged" not in [d["destinationName"] for d in good.describe_destinations()["destinations"]]


@pytest.mark.parametrize("key", ["AKIDUNKNOWN", ACCOUNT, "000000000000"])
def test_unknown_key_is_refused(strict, key):
    # Not even a 12-digit key passes in strict mode, though it would be an account in emulator mode.
    code, _, _ = error_of(client(strict.endpoint, key, secret=SECRET).describe_destinations)
    assert code == "UnrecognizedClientException"


def test_unsigned_request_is_refused(strict):
    response = raw(strict.endpoint, "DescribeDestinations", sign=False)
    assert (response.status, response.error_type) == (403, "MissingAuthenticationTokenException")


def test_tampered_body_is_refused(strict):
    """Signed with one body, sent with another."""
    request = AWSRequest(method="POST", url=strict.endpoint + "/", data=b'{"limit": 1}',
                         headers={"X-Amz-Target": "Logs_20140328.DescribeDestinations", "Content-Type": JSON_11})
    SigV4Auth(Credentials(KEY, SECRET), "logs", REGION).add_auth(request)
    headers = dict(request.headers.items())
    status, _, text = send("POST", request.url, b'{"limit": 1}', headers)
    assert status == 200, text
    status, _, text = send("POST", request.url, b'{"limit": 2}', headers)
    assert (status, json.loads(text)["__type"]) == (403, "InvalidSignatureException")


def test_unsigned_amz_headers_are_refused(strict):
    """An X-Amz-Target added after signing would let anyone on the path pick the operation."""
    logs = client(strict.endpoint, KEY, secret=SECRET)
    logs.create_log_group(logGroupName="kept")
    body = b'{"logGroupName": "kept"}'
    request = AWSRequest(method="POST", url=strict.endpoint + "/", data=body, headers={"Content-Type": JSON_11})
    SigV4Auth(Credentials(KEY, SECRET), "logs", REGION).add_auth(request)
    headers = {**dict(request.headers.items()), "X-Amz-Target": "Logs_20140328.DeleteLogGroup"}
    status, _, text = send("POST", request.url, body, headers)
    error = json.loads(text)
    assert (status, error["__type"]) == (400, "IncompleteSignatureException"), text
    assert "x-amz-target" in error["message"], text
    assert "kept" in [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]


def test_stale_signature_is_refused(strict):
    fresh = raw(strict.endpoint, "DescribeDestinations", account=KEY, secret=SECRET)
    assert fresh.status == 200, fresh.text
    signed_at = utcnow() - datetime.timedelta(minutes=20)
    stale = raw(strict.endpoint, "DescribeDestinations", account=KEY, secret=SECRET, when=signed_at)
    assert stale.status == 403, stale.text
    assert stale.error_type == "InvalidSignatureException"
    assert stale.headers["x-amzn-errortype"] == "InvalidSignatureException"
    # AWS: "Signature expired: 20240101T000000Z is now earlier than 20240101T000500Z (20240101T002000Z - 15 min.)"
    message = stale.json["message"]
    assert message.startswith(f"Signature expired: {signed_at.strftime('%Y%m%dT%H%M%SZ')} is now earlier than "), message
    assert message.endswith(" - 15 min.)"), message


def test_future_signature_is_refused(strict):
    signed_at = utcnow() + datetime.timedelta(minutes=20)
    ahead = raw(strict.endpoint, "DescribeDestinations", account=KEY, secret=SECRET, when=signed_at)
    assert (ahead.status, ahead.error_type) == (403, "InvalidSignatureException")
    assert ahead.json["message"].startswith("Signature not yet current: "), ahead.json


def test_small_clock_skew_is_tolerated(strict):
    for minutes in (-10, 10):
        response = raw(strict.endpoint, "DescribeDestinations", account=KEY, secret=SECRET,
                       when=utcnow() + datetime.timedelta(minutes=minutes))
        assert response.status == 200, (minutes, response.text)


def presign(endpoint, secret=SECRET, expires=60, when=None):
    """A presigned POST of DescribeDestinations (empty body, as botocore presigns it)."""
    request = AWSRequest(method="POST", url=endpoint + "/", data=b"",
                         headers={"X-Amz-Target": "Logs_20140328.DescribeDestinations", "Content-Type": JSON_11})
    signer = SigV4QueryAuth(Credentials(KEY, secret), "logs", REGION, expires=expires)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=naive_utc(when or utcnow())):
        signer.add_auth(request)
    assert "Authorization" not in request.headers
    assert "X-Amz-Signature=" in request.url
    return request.url, dict(request.headers.items())


def test_presigned_url_is_accepted(strict):
    put_destination(client(strict.endpoint, KEY, secret=SECRET), "presigned-sees-me")
    url, headers = presign(strict.endpoint)
    status, _, text = send("POST", url, b"", headers)
    assert status == 200, text
    assert "presigned-sees-me" in [d["destinationName"] for d in json.loads(text)["destinations"]]


def test_presigned_url_tampering_is_refused(strict):
    url, headers = presign(strict.endpoint)
    for tampered in [url.replace("X-Amz-Expires=60", "X-Amz-Expires=61"), url[:-1] + ("0" if url[-1] != "0" else "1")]:
        status, _, text = send("POST", tampered, b"", headers)
        assert (status, json.loads(text)["__type"]) == (403, "InvalidSignatureException"), tampered
    # The body is part of the signature too.
    status, _, text = send("POST", url, b'{"limit": 1}', headers)
    assert (status, json.loads(text)["__type"]) == (403, "InvalidSignatureException")
    # And so is the signed X-Amz-Target header.
    status, _, text = send("POST", url, b"", {**headers, "X-Amz-Target": "Logs_20140328.DeleteDestination"})
    assert (status, json.loads(text)["__type"]) == (403, "InvalidSignatureException")


def test_presigned_url_with_wrong_secret_is_refused(strict):
    url, headers = presign(strict.endpoint, secret="wrong")
    status, _, text = send("POST", url, b"", headers)
    assert (status, json.loads(text)["__type"]) == (403, "InvalidSignatureException")


def test_expired_presigned_url_is_refused(strict):
    url, headers = presign(strict.endpoint, expires=60, when=utcnow() - datetime.timedelta(minutes=2))
    status, _, text = send("POST", url, b"", headers)
    body = json.loads(text)
    assert (status, body["__type"]) == (403, "InvalidSignatureException")
    assert body["message"].startswith("Signature expired: "), body
    assert body["message"].endswith(" - 60 sec.)"), body


def test_reset_is_refused(strict):
    logs = client(strict.endpoint, KEY, secret=SECRET)
    put_destination(logs, "survives-reset")
    status, _, _ = send("POST", strict.endpoint + "/_sluice/reset", b"")
    assert status == 403
    # Signed or not, reset stays off.
    signed = raw(strict.endpoint, body="", path="/_sluice/reset", account=KEY, secret=SECRET)
    assert signed.status == 403
    assert "survives-reset" in [d["destinationName"] for d in logs.describe_destinations()["destinations"]]


def test_made_up_session_tokens_are_refused(strict):
    # Sluice issues no temporary credentials, so any session token is unknown to it.
    import boto3
    from botocore.config import Config

    logs = boto3.client("logs", endpoint_url=strict.endpoint, region_name=REGION, aws_access_key_id=KEY,
                        aws_secret_access_key=SECRET, aws_session_token="made-up-token",
                        config=Config(retries={"max_attempts": 1}))
    code, _, message = error_of(logs.describe_destinations)
    assert (code, message) == ("UnrecognizedClientException", "The security token included in the request is invalid.")
