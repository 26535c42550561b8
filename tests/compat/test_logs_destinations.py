"""CloudWatch Logs destinations through boto3."""
import json
import time

import pytest
from botocore.exceptions import ClientError

from conftest import json_body, send, signed_request


def stream(account, name="s"):
    return f"arn:aws:kinesis:us-east-1:{account}:stream/{name}"


def role(account):
    return f"arn:aws:iam::{account}:role/CWLtoKinesisRole"


def put(logs, account, name, **extra):
    return logs.put_destination(destinationName=name, targetArn=stream(account), roleArn=role(account), **extra)["destination"]


def error_of(call, **kwargs):
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response


def test_put_destination_creates_then_updates_in_place(logs, account):
    before = int(time.time() * 1000)
    created = put(logs, account, "orders", tags={"team": "payments"})
    assert created["arn"] == f"arn:aws:logs:us-east-1:{account}:destination:orders"
    assert before - 1000 <= created["creationTime"] <= before + 60_000
    assert "accessPolicy" not in created
    updated = logs.put_destination(
        destinationName="orders", targetArn=stream(account, "two"), roleArn=role(account), tags={"new": "ignored"}
    )["destination"]
    assert (updated["arn"], updated["creationTime"]) == (created["arn"], created["creationTime"])
    assert updated["targetArn"] == stream(account, "two")
    assert logs.list_tags_for_resource(resourceArn=created["arn"])["tags"] == {"team": "payments"}


def test_model_constraints_with_aws_messages(logs_unchecked, account):
    response = error_of(logs_unchecked.put_destination, destinationName="a:b", targetArn=stream(account), roleArn=role(account))
    assert response["Error"]["Code"] == "InvalidParameterException"
    assert response["Error"]["Message"] == (
        "1 validation error detected: Value 'a:b' at 'destinationName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [^:*]*"
    )
    response = error_of(logs_unchecked.put_destination, destinationName="d", targetArn=stream(account))
    assert response["Error"]["Message"] == (
        "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null"
    )
    for limit, bound in [(0, "greater than or equal to 1"), (51, "less than or equal to 50")]:
        response = error_of(logs_unchecked.describe_destinations, limit=limit)
        assert response["Error"]["Code"] == "InvalidParameterException"
        assert response["Error"]["Message"].endswith(f"Member must have value {bound}")
    for target in ["nope", f"arn:aws:sqs:us-east-1:{account}:q", f"arn:aws:kinesis:eu-west-1:{account}:stream/s"]:
        response = error_of(logs_unchecked.put_destination, destinationName="d", targetArn=target, roleArn=role(account))
        assert response["Error"]["Code"] == "InvalidParameterException"
    response = error_of(logs_unchecked.put_destination, destinationName="d", targetArn=stream(account), roleArn="role")
    assert response["Error"]["Code"] == "InvalidParameterException"


def test_describe_sorts_filters_and_paginates(logs, account):
    names = ["b", "a", "B", "_x", "ab", "a-1", "c"]
    for name in names:
        put(logs, account, name)
    listed = [d["destinationName"] for d in logs.describe_destinations()["destinations"]]
    assert listed == sorted(names)  # Python sorts str by code point: ASCII order
    prefixed = logs.describe_destinations(DestinationNamePrefix="a")["destinations"]
    assert [d["destinationName"] for d in prefixed] == ["a", "a-1", "ab"]
    pages = logs.get_paginator("describe_destinations").paginate(PaginationConfig={"PageSize": 3})
    paged = [d["destinationName"] for page in pages for d in page["destinations"]]
    assert paged == sorted(names)
    response = error_of(logs.describe_destinations, nextToken="not-a-token")
    assert response["Error"]["Code"] == "InvalidParameterException"


def test_default_page_is_fifty(logs, account):
    for i in range(52):
        put(logs, account, f"d{i:02d}")
    first = logs.describe_destinations()
    assert len(first["destinations"]) == 50 and "nextToken" in first
    second = logs.describe_destinations(nextToken=first["nextToken"])
    assert [d["destinationName"] for d in second["destinations"]] == ["d50", "d51"]
    assert "nextToken" not in second


def test_delete_and_missing(logs, account):
    put(logs, account, "gone")
    logs.delete_destination(destinationName="gone")
    assert logs.describe_destinations()["destinations"] == []
    response = error_of(logs.delete_destination, destinationName="gone")
    assert response["Error"] == {"Code": "ResourceNotFoundException", "Message": "The specified destination does not exist."}
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "ResourceNotFoundException"
    assert response["ResponseMetadata"]["RequestId"]


def test_destination_policy(logs, account):
    arn = put(logs, account, "shared")["arn"]
    policy = json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "111111111111"},
                       "Action": "logs:PutSubscriptionFilter", "Resource": arn}],
    })
    logs.put_destination_policy(destinationName="shared", accessPolicy=policy)
    assert logs.describe_destinations()["destinations"][0]["accessPolicy"] == policy
    for bad in ["{", '{"Statement":[{"Action":"logs:*","Principal":"*"}]}', "x" * 5121]:
        response = error_of(logs.put_destination_policy, destinationName="shared", accessPolicy=bad)
        assert response["Error"]["Code"] == "InvalidParameterException"
    assert error_of(logs.put_destination_policy, destinationName="nope", accessPolicy=policy)["Error"]["Code"] == "ResourceNotFoundException"
    org = json.dumps({
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "logs:PutSubscriptionFilter", "Resource": arn,
                       "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123def4"}}}],
    })
    assert error_of(logs.put_destination_policy, destinationName="shared", accessPolicy=org)["Error"]["Code"] == "InvalidParameterException"
    logs.put_destination_policy(destinationName="shared", accessPolicy=org, forceUpdate=True)


def test_tags(logs, account):
    arn = put(logs, account, "tagged")["arn"]
    logs.tag_resource(resourceArn=arn, tags={"a": "1", "b": "2"})
    logs.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"b": "2"}
    response = error_of(logs.tag_resource, resourceArn=arn, tags={f"k{i}": "v" for i in range(50)})
    assert response["Error"]["Code"] == "TooManyTagsException"
    assert logs.exceptions.TooManyTagsException  # botocore maps the code to the modelled class
    other = f"arn:aws:logs:us-east-1:999999999999:destination:tagged"
    assert error_of(logs.list_tags_for_resource, resourceArn=other)["Error"]["Code"] == "ResourceNotFoundException"


def test_accounts_are_isolated(server, logs, account):
    from conftest import logs_client

    put(logs, account, "private")
    stranger = logs_client(server.endpoint, "999999999998")
    assert stranger.describe_destinations()["destinations"] == []
    with pytest.raises(stranger.exceptions.ResourceNotFoundException):
        stranger.delete_destination(destinationName="private")


def test_raw_wire_errors(server):
    status, headers, body = signed_request(server.endpoint, "Logs_20140328.DescribeDestinations", "{bad json")
    assert status == 400 and json_body(body)["__type"] == "SerializationException"
    assert headers["x-amzn-errortype"] == "SerializationException" and headers["x-amzn-requestid"]
    status, _, body = signed_request(server.endpoint, "Logs_20140328.DescribeDestinations", '{"limit": "ten"}')
    assert (status, json_body(body)["__type"]) == (400, "SerializationException")
    status, _, body = signed_request(server.endpoint, "Logs_20140328.Nope", "{}")
    assert (status, json_body(body)["__type"]) == (400, "UnknownOperationException")
    status, _, body = signed_request(server.endpoint, "Logs_20140328.DescribeDestinations", "{}", headers={"Content-Type": "text/plain"})
    assert status == 400 and json_body(body)["__type"]


def test_browser_guards_and_health(server):
    status, _, body = send("POST", server.endpoint + "/", b"{}", {"X-Amz-Target": "Logs_20140328.DescribeDestinations"})
    assert (status, json_body(body)["__type"]) == (403, "MissingAuthenticationTokenException")
    status, _, _ = signed_request(server.endpoint, "Logs_20140328.DescribeDestinations", "{}", headers={"Origin": "http://evil.example"})
    assert status == 403
    status, headers, _ = send("OPTIONS", server.endpoint + "/", None, {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert status == 403 and "access-control-allow-origin" not in headers
    status, _, body = send("GET", server.endpoint + "/_sluice/health")
    assert status == 200 and "logs" in json_body(body)["services"] and json_body(body)["version"]
