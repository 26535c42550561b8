"""Amazon Data Firehose through boto3 and the AWS CLI v1: delivery streams into Sluice's own
S3 buckets, records read back as S3 objects."""
import gzip
import json
import re
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import REGION
from test_aws_cli import aws

ROLE = "arn:aws:iam::123456789012:role/firehose"
DESTINATION_ID = "destinationId-000000000001"


def boto(endpoint, account, service):
    extra = {"s3": {"addressing_style": "path"}} if service == "s3" else {}
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=account, aws_secret_access_key="x",
                        config=Config(retries={"max_attempts": 1}, **extra))


@pytest.fixture
def firehose(endpoint, account):
    return boto(endpoint, account, "firehose")


@pytest.fixture
def s3(endpoint, account):
    return boto(endpoint, account, "s3")


def wait_active(firehose, name, bound=30):
    deadline = time.time() + bound
    while True:
        status = firehose.describe_delivery_stream(DeliveryStreamName=name)[
            "DeliveryStreamDescription"]["DeliveryStreamStatus"]
        if status == "ACTIVE":
            return
        assert time.time() < deadline, f"{name} never became ACTIVE"
        time.sleep(0.1)


def destination(bucket, interval=0, **extra):
    return {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": interval}, **extra}


def objects(s3, bucket):
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            found.append((item["Key"], s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()))
    return found


def wait_delivered(s3, bucket, size, decode=lambda body: body, bound=60):
    deadline = time.time() + bound
    while True:
        found = [(key, decode(body)) for key, body in objects(s3, bucket)]
        if sum(len(body) for _, body in found) >= size:
            return found
        assert time.time() < deadline, f"not all records reached {bucket}"
        time.sleep(0.2)


def record(n):
    return b'{"n":%05d,"pad":"%s"}' % (n, b"y" * (n % 29))


def in_record_order(found):
    """Objects sorted by their first record, concatenated."""
    return b"".join(body for _, body in sorted(found, key=lambda item: int(item[1][5:10])))


def put_all(firehose, name, count):
    sent = b""
    for start in range(0, count, 500):
        batch = [record(n) for n in range(start, min(start + 500, count))]
        answer = firehose.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in batch])
        assert answer["FailedPutCount"] == 0
        assert answer["Encrypted"] is False
        assert len(answer["RequestResponses"]) == len(batch)
        assert all(r["RecordId"] for r in answer["RequestResponses"])
        sent += b"".join(batch)
    return sent


DEFAULT_KEY = re.compile(
    r"^(\d{4})/(\d{2})/(\d{2})/(\d{2})/(?P<name>[\w.-]+)-(?P<version>\d+)-(\d{4})-(\d{2})-(\d{2})-(\d{2})-\d{2}-\d{2}-"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?P<ext>(\.gz)?)$")


def test_ten_thousand_records_with_boto3(firehose, s3, account):
    bucket = f"fh-boto-{account}"
    s3.create_bucket(Bucket=bucket)
    arn = firehose.create_delivery_stream(
        DeliveryStreamName="events", DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration=destination(bucket))["DeliveryStreamARN"]
    assert arn == f"arn:aws:firehose:{REGION}:{account}:deliverystream/events"
    wait_active(firehose, "events")
    sent = put_all(firehose, "events", 10_000)
    found = wait_delivered(s3, bucket, len(sent))
    for key, _ in found:
        match = DEFAULT_KEY.match(key)
        assert match, key
        assert (match["name"], match["version"], match["ext"]) == ("events", "1", "")
        assert match.group(1, 2, 3, 4) == match.group(7, 8, 9, 10), key
    assert in_record_order(found) == sent


def test_gzip_with_boto3(firehose, s3, account):
    bucket = f"fh-boto-gz-{account}"
    s3.create_bucket(Bucket=bucket)
    firehose.create_delivery_stream(
        DeliveryStreamName="zipped",
        ExtendedS3DestinationConfiguration=destination(bucket, 1, CompressionFormat="GZIP"))
    wait_active(firehose, "zipped")
    sent = put_all(firehose, "zipped", 1_500)
    found = wait_delivered(s3, bucket, len(sent), gzip.decompress)
    assert all(DEFAULT_KEY.match(key)["ext"] == ".gz" for key, _ in found)
    assert in_record_order(found) == sent


def test_control_plane_with_boto3(firehose, account):
    bucket = f"fh-boto-cp-{account}"
    firehose.create_delivery_stream(DeliveryStreamName="one",
                                    ExtendedS3DestinationConfiguration=destination(bucket, 60),
                                    Tags=[{"Key": "team", "Value": "data"}])
    described = firehose.describe_delivery_stream(DeliveryStreamName="one")["DeliveryStreamDescription"]
    assert described["DeliveryStreamStatus"] in ("CREATING", "ACTIVE")
    wait_active(firehose, "one")
    for name in ("two", "three"):
        firehose.create_delivery_stream(DeliveryStreamName=name,
                                        ExtendedS3DestinationConfiguration=destination(bucket, 60))
    page = firehose.list_delivery_streams(Limit=2)
    assert (page["DeliveryStreamNames"], page["HasMoreDeliveryStreams"]) == (["one", "three"], True)
    page = firehose.list_delivery_streams(ExclusiveStartDeliveryStreamName="three")
    assert (page["DeliveryStreamNames"], page["HasMoreDeliveryStreams"]) == (["two"], False)

    described = firehose.describe_delivery_stream(DeliveryStreamName="one")["DeliveryStreamDescription"]
    assert described["VersionId"] == "1"
    assert described["Destinations"][0]["DestinationId"] == DESTINATION_ID
    firehose.update_destination(DeliveryStreamName="one", CurrentDeliveryStreamVersionId="1",
                                DestinationId=DESTINATION_ID,
                                ExtendedS3DestinationUpdate={"BufferingHints": {"SizeInMBs": 64}})
    with pytest.raises(ClientError) as stale:
        firehose.update_destination(DeliveryStreamName="one", CurrentDeliveryStreamVersionId="1",
                                    DestinationId=DESTINATION_ID, ExtendedS3DestinationUpdate={"Prefix": "x/"})
    assert stale.value.response["Error"]["Code"] == "ConcurrentModificationException"
    described = firehose.describe_delivery_stream(DeliveryStreamName="one")["DeliveryStreamDescription"]
    assert described["VersionId"] == "2"
    hints = described["Destinations"][0]["ExtendedS3DestinationDescription"]["BufferingHints"]
    assert hints == {"SizeInMBs": 64, "IntervalInSeconds": 60}

    assert firehose.list_tags_for_delivery_stream(DeliveryStreamName="one")["Tags"] == [
        {"Key": "team", "Value": "data"}]
    firehose.delete_delivery_stream(DeliveryStreamName="one")
    with pytest.raises(ClientError) as missing:
        firehose.describe_delivery_stream(DeliveryStreamName="one")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert missing.value.response["Error"]["Message"] == f"Firehose one under account {account} not found."

    with pytest.raises(ClientError) as other_kind:
        firehose.create_delivery_stream(
            DeliveryStreamName="http",
            HttpEndpointDestinationConfiguration={
                "EndpointConfiguration": {"Url": "https://example.com"},
                "S3Configuration": destination(bucket)})
    assert other_kind.value.response["Error"]["Code"] == "InvalidArgumentException"
    with pytest.raises(ClientError) as snappy:
        firehose.create_delivery_stream(
            DeliveryStreamName="snappy",
            ExtendedS3DestinationConfiguration=destination(bucket, CompressionFormat="Snappy"))
    assert snappy.value.response["Error"]["Code"] == "InvalidArgumentException"
    with pytest.raises(ClientError) as in_prefix:
        firehose.create_delivery_stream(
            DeliveryStreamName="prefix",
            ExtendedS3DestinationConfiguration=destination(
                bucket, Prefix="!{firehose:error-output-type}/", ErrorOutputPrefix="e/"))
    assert in_prefix.value.response["Error"]["Code"] == "InvalidArgumentException"


def test_cli_round_trip(endpoint, account, s3):
    bucket = f"fh-cli-{account}"
    s3.create_bucket(Bucket=bucket)
    config = json.dumps(destination(bucket, 0, Prefix="cli/"))
    code, out, err = aws(endpoint, account, "firehose", "create-delivery-stream",
                         "--delivery-stream-name", "cli-stream",
                         "--extended-s3-destination-configuration", config)
    assert code == 0, err
    assert out["DeliveryStreamARN"].endswith(":deliverystream/cli-stream")
    deadline = time.time() + 30
    while True:
        code, out, err = aws(endpoint, account, "firehose", "describe-delivery-stream",
                             "--delivery-stream-name", "cli-stream")
        assert code == 0, err
        if out["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE":
            break
        assert time.time() < deadline
        time.sleep(0.2)
    # The CLI v1 base64-encodes blob arguments itself.
    code, out, err = aws(endpoint, account, "firehose", "put-record-batch",
                         "--delivery-stream-name", "cli-stream",
                         "--records", json.dumps([{"Data": "first,"}, {"Data": "second"}]))
    assert code == 0, err
    assert out["FailedPutCount"] == 0
    found = wait_delivered(s3, bucket, len(b"first,second"))
    assert b"".join(body for _, body in sorted(found)) == b"first,second"
    assert all(key.startswith("cli/") for key, _ in found)

    code, out, err = aws(endpoint, account, "firehose", "list-delivery-streams")
    assert code == 0, err
    assert out["DeliveryStreamNames"] == ["cli-stream"]
    code, _, err = aws(endpoint, account, "firehose", "delete-delivery-stream",
                       "--delivery-stream-name", "cli-stream")
    assert code == 0, err
    code, _, err = aws(endpoint, account, "firehose", "describe-delivery-stream",
                       "--delivery-stream-name", "cli-stream")
    assert code != 0 and "ResourceNotFoundException" in err
