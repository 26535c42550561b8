"""The CloudWatch Logs data plane through boto3: two accounts, a destination, Kinesis."""
import gzip
import json
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import REGION, logs_client


def kinesis_client(endpoint, account):
    return boto3.client("kinesis", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=account,
                        aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}))


def read_envelopes(kinesis, stream, want_data, timeout=15):
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId="shardId-000000000000",
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    found, deadline = [], time.time() + timeout
    while sum(e["messageType"] == "DATA_MESSAGE" for e in found) < want_data:
        assert time.time() < deadline, found
        page = kinesis.get_records(ShardIterator=iterator)
        found += [json.loads(gzip.decompress(r["Data"])) for r in page["Records"]]
        iterator = page["NextShardIterator"]
        time.sleep(0.05)
    return found


def test_cross_account_subscription_delivers_matching_events(server):
    a, b, c = "710000000001", "710000000002", "710000000003"
    kinesis_b = kinesis_client(server.endpoint, b)
    kinesis_b.create_stream(StreamName="central", ShardCount=1)
    logs_b = logs_client(server.endpoint, b)
    destination = logs_b.put_destination(destinationName="central", roleArn=f"arn:aws:iam::{b}:role/r",
                                         targetArn=f"arn:aws:kinesis:{REGION}:{b}:stream/central")["destination"]["arn"]
    logs_b.put_destination_policy(destinationName="central", accessPolicy=json.dumps({
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": a}, "Action": "logs:PutSubscriptionFilter", "Resource": destination}]}))

    logs_a = logs_client(server.endpoint, a)
    logs_a.create_log_group(logGroupName="/svc/api")
    logs_a.create_log_stream(logGroupName="/svc/api", logStreamName="host-1")
    logs_a.put_subscription_filter(logGroupName="/svc/api", filterName="5xx", destinationArn=destination,
                                   filterPattern="[ip, user, ts, request, status = 5*, bytes]")
    now = int(time.time() * 1000)
    logs_a.put_log_events(logGroupName="/svc/api", logStreamName="host-1", logEvents=[
        {"timestamp": now, "message": '10.0.0.1 - [24/Nov/2026:10:00:00] "GET /a" 200 12'},
        {"timestamp": now + 1, "message": '10.0.0.2 - [24/Nov/2026:10:00:01] "GET /b" 503 0'},
    ])
    envelopes = read_envelopes(kinesis_b, "central", 1)
    assert envelopes[0]["messageType"] == "CONTROL_MESSAGE"
    data = next(e for e in envelopes if e["messageType"] == "DATA_MESSAGE")
    assert (data["owner"], data["logGroup"], data["logStream"], data["subscriptionFilters"]) == (a, "/svc/api", "host-1", ["5xx"])
    assert [e["message"] for e in data["logEvents"]] == ['10.0.0.2 - [24/Nov/2026:10:00:01] "GET /b" 503 0']
    assert len(data["logEvents"][0]["id"]) == 56

    logs_c = logs_client(server.endpoint, c)
    logs_c.create_log_group(logGroupName="g")
    with pytest.raises(ClientError) as refused:
        logs_c.put_subscription_filter(logGroupName="g", filterName="f", filterPattern="", destinationArn=destination)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"


def test_events_round_trip_and_filter(server, account):
    logs = logs_client(server.endpoint, account)
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    now = int(time.time() * 1000)
    response = logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=[
        {"timestamp": now, "message": '{"level":"ERROR","latency":900}'},
        {"timestamp": now + 1, "message": '{"level":"INFO","latency":10}'},
    ])
    assert response["nextSequenceToken"]
    events = logs.get_log_events(logGroupName="g", logStreamName="s", startFromHead=True)["events"]
    assert [e["timestamp"] for e in events] == [now, now + 1]
    found = logs.filter_log_events(logGroupName="g", filterPattern="{ $.latency > 500 }")["events"]
    assert [json.loads(e["message"])["level"] for e in found] == ["ERROR"]
    matches = logs.test_metric_filter(filterPattern="ERROR", logEventMessages=["ERROR x", "INFO y"])["matches"]
    assert [m["eventNumber"] for m in matches] == [1]
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.put_log_events(logGroupName="g", logStreamName="s",
                            logEvents=[{"timestamp": now, "message": "b"}, {"timestamp": now - 1, "message": "a"}])


def test_another_accounts_stream_needs_its_resource_policy(server):
    from conftest import new_account
    a, b = new_account(), new_account()
    kinesis_a = kinesis_client(server.endpoint, a)
    kinesis_a.create_stream(StreamName="central", ShardCount=1)
    stream = f"arn:aws:kinesis:{REGION}:{a}:stream/central"
    assert kinesis_a.get_resource_policy(ResourceARN=stream)["Policy"] == "{}"
    role = f"arn:aws:iam::{b}:role/CWLtoKinesis"
    logs_b = logs_client(server.endpoint, b)
    with pytest.raises(logs_b.exceptions.InvalidParameterException) as refused:
        logs_b.put_destination(destinationName="into-a", targetArn=stream, roleArn=role)
    assert refused.value.response["Error"]["Message"].startswith(
        "Could not deliver test message to specified Kinesis stream.")

    with pytest.raises(kinesis_a.exceptions.AccessDeniedException):
        kinesis_client(server.endpoint, b).get_resource_policy(ResourceARN=stream)
    grant = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": role}, "Action": "kinesis:PutRecord", "Resource": stream}]})
    kinesis_a.put_resource_policy(ResourceARN=stream, Policy=grant)
    assert kinesis_a.get_resource_policy(ResourceARN=stream)["Policy"] == grant
    created = logs_b.put_destination(destinationName="into-a", targetArn=stream, roleArn=role)["destination"]
    assert created["targetArn"] == stream
    kinesis_a.delete_resource_policy(ResourceARN=stream)
    with pytest.raises(kinesis_a.exceptions.ResourceNotFoundException):
        kinesis_a.delete_resource_policy(ResourceARN=stream)
