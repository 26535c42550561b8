"""CloudWatch Logs destinations through boto3, and the wire around them through raw requests."""
import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import JSON_11, REGION, client, new_account, raw, send

NAME_PATTERN_MESSAGE = (
    "1 validation error detected: Value '{value}' at 'destinationName' failed to satisfy constraint: "
    "Member must satisfy regular expression pattern: [^:*]*"
)


def stream(account, name="s", region=REGION):
    return f"arn:aws:kinesis:{region}:{account}:stream/{name}"


def role(account, name="CWLtoKinesisRole"):
    return f"arn:aws:iam::{account}:role/{name}"


def dest_arn(account, name):
    return f"arn:aws:logs:{REGION}:{account}:destination:{name}"


def ensure_stream(endpoint, access_key, name="s", region=REGION):
    """Creates a Kinesis stream unless it exists: AWS refuses a destination whose target stream
    does not exist, since it cannot deliver its test message."""
    kinesis = client(endpoint, access_key, "kinesis")
    if region != REGION:
        kinesis = boto3.client("kinesis", region_name=region, endpoint_url=endpoint,
                               aws_access_key_id=access_key, aws_secret_access_key="any-secret")
    try:
        kinesis.create_stream(StreamName=name, ShardCount=1)
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceInUseException":
            raise


@pytest.fixture(autouse=True)
def target_streams(endpoint, account):
    """The streams this file's destinations point at, in each test's own account."""
    for name in ("s", "two", "new"):
        ensure_stream(endpoint, account, name)


def put(logs, account, name, **extra):
    ensure_stream(logs.meta.endpoint_url, account)
    return logs.put_destination(destinationName=name, targetArn=stream(account), roleArn=role(account),
                                **extra)["destination"]


def error_of(call, **kwargs):
    """Calls and returns the parsed error response; fails if the call succeeds."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response


def code_of(call, **kwargs):
    return error_of(call, **kwargs)["Error"]["Code"]


def names(logs, **kwargs):
    return [d["destinationName"] for d in logs.describe_destinations(**kwargs)["destinations"]]


def account_policy(arn, *accounts):
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": list(accounts) if len(accounts) > 1 else accounts[0]},
                       "Action": "logs:PutSubscriptionFilter", "Resource": arn}],
    })


def org_policy(arn, org="o-abc123def4"):
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "logs:PutSubscriptionFilter", "Resource": arn,
                       "Condition": {"StringEquals": {"aws:PrincipalOrgID": [org]}}}],
    })


# --------------------------------------------------------------------------------------------
# PutDestination
# --------------------------------------------------------------------------------------------


def test_put_destination_creates_with_arn_time_and_tags(logs, account):
    before = int(time.time() * 1000)
    created = put(logs, account, "orders", tags={"team": "payments", "env": "prod"})
    after = int(time.time() * 1000)
    assert created["destinationName"] == "orders"
    assert created["arn"] == dest_arn(account, "orders")
    assert created["targetArn"] == stream(account)
    assert created["roleArn"] == role(account)
    assert isinstance(created["creationTime"], int)
    assert before - 2000 <= created["creationTime"] <= after + 2000, (before, created["creationTime"], after)
    assert "accessPolicy" not in created
    assert logs.list_tags_for_resource(resourceArn=created["arn"])["tags"] == {"team": "payments", "env": "prod"}
    [described] = logs.describe_destinations()["destinations"]
    assert described == created


def test_put_destination_again_updates_in_place_and_ignores_tags(logs, account):
    created = put(logs, account, "orders", tags={"team": "payments"})
    time.sleep(0.01)  # so that a re-stamped creationTime would differ
    updated = logs.put_destination(destinationName="orders", targetArn=stream(account, "two"),
                                   roleArn=role(account, "other"), tags={"new": "ignored"})["destination"]
    assert updated["arn"] == created["arn"]
    assert updated["creationTime"] == created["creationTime"]
    assert updated["targetArn"] == stream(account, "two")
    assert updated["roleArn"] == role(account, "other")
    [described] = logs.describe_destinations()["destinations"]
    assert (described["arn"], described["creationTime"], described["targetArn"], described["roleArn"]) == (
        created["arn"], created["creationTime"], stream(account, "two"), role(account, "other"))
    assert logs.list_tags_for_resource(resourceArn=created["arn"])["tags"] == {"team": "payments"}


def test_update_keeps_the_access_policy(logs, account):
    arn = put(logs, account, "kept")["arn"]
    policy = account_policy(arn, "111122223333")
    logs.put_destination_policy(destinationName="kept", accessPolicy=policy)
    updated = logs.put_destination(destinationName="kept", targetArn=stream(account, "new"),
                                   roleArn=role(account))["destination"]
    assert updated["accessPolicy"] == policy
    assert logs.describe_destinations()["destinations"][0]["accessPolicy"] == policy


def test_a_missing_firehose_target_is_refused(logs, account):
    target = f"arn:aws:firehose:{REGION}:{account}:deliverystream/central"
    response = error_of(logs.put_destination, destinationName="fh", targetArn=target, roleArn=role(account))
    assert response["Error"] == {
        "Code": "InvalidParameterException",
        "Message": "Could not deliver test message to specified Firehose stream. "
                   "Check if the given Firehose stream is in ACTIVE state.",
    }


def test_a_missing_target_stream_is_refused(logs, account):
    response = error_of(logs.put_destination, destinationName="d", targetArn=stream(account, "absent"),
                        roleArn=role(account))
    assert response["Error"] == {
        "Code": "InvalidParameterException",
        "Message": "Could not deliver test message to specified Kinesis stream. "
                   "Check if the given kinesis stream is in ACTIVE state.",
    }
    assert names(logs) == []


def test_a_target_in_another_region_is_allowed(endpoint, logs, account):
    ensure_stream(endpoint, account, "far", region="eu-west-1")
    created = logs.put_destination(destinationName="far", targetArn=stream(account, "far", "eu-west-1"),
                                   roleArn=role(account))["destination"]
    assert created["arn"] == dest_arn(account, "far")
    assert created["targetArn"] == stream(account, "far", "eu-west-1")


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a:b", "a*b", "*", ":"])
def test_destination_name_pattern(logs_unchecked, account, name):
    response = error_of(logs_unchecked.put_destination, destinationName=name, targetArn=stream(account),
                        roleArn=role(account))
    assert response["Error"]["Code"] == "InvalidParameterException"
    assert response["Error"]["Message"] == NAME_PATTERN_MESSAGE.format(value=name)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert logs_unchecked.describe_destinations()["destinations"] == []


def test_destination_name_length(logs_unchecked, account):
    long_name = "n" * 513
    response = error_of(logs_unchecked.put_destination, destinationName=long_name, targetArn=stream(account),
                        roleArn=role(account))
    assert response["Error"]["Code"] == "InvalidParameterException"
    assert response["Error"]["Message"] == (
        f"1 validation error detected: Value '{long_name}' at 'destinationName' failed to satisfy constraint: "
        "Member must have length less than or equal to 512"
    )
    response = error_of(logs_unchecked.put_destination, destinationName="", targetArn=stream(account),
                        roleArn=role(account))
    assert response["Error"]["Code"] == "InvalidParameterException"
    assert response["Error"]["Message"] == (
        "1 validation error detected: Value '' at 'destinationName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )
    # The boundary itself is fine.
    assert put(logs_unchecked, account, "n" * 512)["destinationName"] == "n" * 512


@pytest.mark.parametrize("limit, bound", [(0, "greater than or equal to 1"), (51, "less than or equal to 50"),
                                          (-1, "greater than or equal to 1")])
def test_describe_limit_range(logs_unchecked, limit, bound):
    response = error_of(logs_unchecked.describe_destinations, limit=limit)
    assert response["Error"]["Code"] == "InvalidParameterException"
    assert response["Error"]["Message"] == (
        f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: "
        f"Member must have value {bound}"
    )


def test_describe_limit_bounds_are_inclusive(logs, account):
    for name in ["x", "y"]:
        put(logs, account, name)
    assert names(logs, limit=1) == ["x"]
    assert names(logs, limit=50) == ["x", "y"]


@pytest.mark.parametrize("target", [
    "nope",
    "arn:aws:sqs:us-east-1:{account}:queue",
    "arn:aws:s3:::bucket",
    "arn:aws:kinesis:us-east-1:{account}:table/s",
    "arn:aws:kinesis:us-east-1:{account}:stream/",
    "arn:aws:kinesis:us-east-1:12345:stream/s",
])
def test_bad_target_arn(logs_unchecked, account, target):
    response = error_of(logs_unchecked.put_destination, destinationName="d", targetArn=target.format(account=account),
                        roleArn=role(account))
    assert response["Error"]["Code"] == "InvalidParameterException", response["Error"]
    assert logs_unchecked.describe_destinations()["destinations"] == []


@pytest.mark.parametrize("role_arn", [
    "role",
    "arn:aws:iam::{account}:user/someone",
    "arn:aws:iam::12345:role/r",
    "arn:aws:iam::{account}:role/",
    "arn:aws:kinesis:us-east-1:{account}:stream/s",
])
def test_bad_role_arn(logs_unchecked, account, role_arn):
    response = error_of(logs_unchecked.put_destination, destinationName="d", targetArn=stream(account),
                        roleArn=role_arn.format(account=account))
    assert response["Error"]["Code"] == "InvalidParameterException", response["Error"]
    assert logs_unchecked.describe_destinations()["destinations"] == []


def test_missing_required_members(logs_unchecked, account):
    response = error_of(logs_unchecked.put_destination, destinationName="d", targetArn=stream(account))
    assert response["Error"]["Code"] == "InvalidParameterException"
    assert response["Error"]["Message"] == (
        "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null"
    )
    response = error_of(logs_unchecked.put_destination, destinationName="d")
    message = response["Error"]["Message"]
    assert message.startswith("2 validation errors detected: ")
    assert "Value null at 'roleArn' failed to satisfy constraint: Member must not be null" in message
    assert "Value null at 'targetArn' failed to satisfy constraint: Member must not be null" in message
    response = error_of(logs_unchecked.delete_destination)
    assert response["Error"]["Message"] == (
        "1 validation error detected: Value null at 'destinationName' failed to satisfy constraint: "
        "Member must not be null"
    )


# --------------------------------------------------------------------------------------------
# DescribeDestinations
# --------------------------------------------------------------------------------------------

MIXED = ["b", "a", "B", "_x", "ab", "a-1", "Zed"]


@pytest.fixture
def seven(logs, account):
    for name in MIXED:
        put(logs, account, name)
    return sorted(MIXED)  # Python orders str by code point: ASCII order here


def test_describe_sorts_in_ascii_order(logs, seven):
    assert seven == ["B", "Zed", "_x", "a", "a-1", "ab", "b"]
    assert names(logs) == seven


def test_describe_prefix_filter(logs, seven):
    assert names(logs, DestinationNamePrefix="a") == ["a", "a-1", "ab"]
    assert names(logs, DestinationNamePrefix="ab") == ["ab"]
    assert names(logs, DestinationNamePrefix="B") == ["B"]  # case-sensitive
    assert names(logs, DestinationNamePrefix="zz") == []


def test_describe_prefix_wildcards_are_literal_and_order_is_by_code_point(logs, account):
    created = ["a b", "a%c", "a_b", "ab", "axb", "z", "\u00e9", "\u65e5\u672c"]
    for name in reversed(created):
        put(logs, account, name)
    assert names(logs) == sorted(created) == created
    assert names(logs, DestinationNamePrefix="a_") == ["a_b"]
    assert names(logs, DestinationNamePrefix="a%") == ["a%c"]
    assert names(logs, DestinationNamePrefix="a ") == ["a b"]
    assert names(logs, DestinationNamePrefix="\u65e5") == ["\u65e5\u672c"]


def test_describe_pages_with_limit_and_next_token(logs, seven):
    pages, token = [], None
    while True:
        kwargs = {"limit": 3, **({"nextToken": token} if token else {})}
        response = logs.describe_destinations(**kwargs)
        pages.append([d["destinationName"] for d in response["destinations"]])
        token = response.get("nextToken")
        if not token:
            break
        assert len(pages) < 10, pages
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [name for page in pages for name in page] == seven


def test_describe_pages_with_prefix(logs, seven):
    first = logs.describe_destinations(DestinationNamePrefix="a", limit=2)
    assert [d["destinationName"] for d in first["destinations"]] == ["a", "a-1"]
    second = logs.describe_destinations(DestinationNamePrefix="a", limit=2, nextToken=first["nextToken"])
    assert [d["destinationName"] for d in second["destinations"]] == ["ab"]
    assert "nextToken" not in second


def test_describe_paginator(logs, seven):
    pages = list(logs.get_paginator("describe_destinations").paginate(PaginationConfig={"PageSize": 2}))
    assert [len(page["destinations"]) for page in pages] == [2, 2, 2, 1]
    assert [d["destinationName"] for page in pages for d in page["destinations"]] == seven
    everything = logs.get_paginator("describe_destinations").paginate().build_full_result()
    assert [d["destinationName"] for d in everything["destinations"]] == seven


def test_describe_default_limit_is_fifty(logs, account):
    created = [f"d{i:02d}" for i in range(55)]
    for name in created:
        put(logs, account, name)
    first = logs.describe_destinations()
    assert len(first["destinations"]) == 50
    assert first.get("nextToken")
    second = logs.describe_destinations(nextToken=first["nextToken"])
    assert "nextToken" not in second
    collected = [d["destinationName"] for d in first["destinations"] + second["destinations"]]
    assert collected == created


@pytest.mark.parametrize("token", ["garbage", "eyJhZnRlciI6ImEifQ==", "x" * 300])
def test_describe_garbage_next_token(logs, account, token):
    put(logs, account, "a")
    response = error_of(logs.describe_destinations, nextToken=token)
    assert response["Error"]["Code"] == "InvalidParameterException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_next_token_of_another_account_is_refused(endpoint, logs, account):
    for name in ["a", "b"]:
        put(logs, account, name)
    token = logs.describe_destinations(limit=1)["nextToken"]
    other = client(endpoint, new_account())
    assert code_of(other.describe_destinations, nextToken=token) == "InvalidParameterException"


# --------------------------------------------------------------------------------------------
# DeleteDestination
# --------------------------------------------------------------------------------------------


def test_delete_destination(logs, account):
    put(logs, account, "gone", tags={"t": "1"})
    put(logs, account, "stays")
    assert logs.delete_destination(destinationName="gone")["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert names(logs) == ["stays"]
    response = error_of(logs.delete_destination, destinationName="gone")
    assert response["Error"]["Code"] == "ResourceNotFoundException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # Its tags went with it: a new destination of the same name starts bare.
    put(logs, account, "gone")
    assert logs.list_tags_for_resource(resourceArn=dest_arn(account, "gone"))["tags"] == {}


def test_delete_missing(logs):
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.delete_destination(destinationName="never-existed")


# --------------------------------------------------------------------------------------------
# PutDestinationPolicy
# --------------------------------------------------------------------------------------------


def test_destination_policy_is_stored_verbatim(logs, account):
    arn = put(logs, account, "shared")["arn"]
    policy = account_policy(arn, "111111111111", "222222222222")
    response = logs.put_destination_policy(destinationName="shared", accessPolicy=policy)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert logs.describe_destinations()["destinations"][0]["accessPolicy"] == policy
    # Replaced, not merged.
    second = account_policy(arn, "333333333333")
    logs.put_destination_policy(destinationName="shared", accessPolicy=second)
    assert logs.describe_destinations()["destinations"][0]["accessPolicy"] == second


@pytest.mark.parametrize("bad", [
    "{",
    "not json",
    "[]",
    '{"Statement":[{"Action":"logs:PutSubscriptionFilter","Principal":{"AWS":"111111111111"},"Resource":"*"}]}',
    '{"Statement":[{"Effect":"Maybe","Action":"logs:PutSubscriptionFilter","Principal":{"AWS":"111111111111"}}]}',
    '{"Statement":[{"Effect":"Allow","Action":"logs:PutSubscriptionFilter","Principal":{"AWS":"not-an-account"}}]}',
    '{"Statement":[{"Effect":"Allow","Action":"logs:PutSubscriptionFilter","Principal":{"Bogus":"111111111111"}}]}',
    '{"Statement":[{"Effect":"Allow","Action":"logs:PutSubscriptionFilter","Principal":42}]}',
    '{"Statement":[]}',
])
def test_invalid_policies(logs, account, bad):
    arn = put(logs, account, "shared")["arn"]
    good = account_policy(arn, "111111111111")
    logs.put_destination_policy(destinationName="shared", accessPolicy=good)
    response = error_of(logs.put_destination_policy, destinationName="shared", accessPolicy=bad)
    assert response["Error"]["Code"] == "InvalidParameterException", response["Error"]
    assert logs.describe_destinations()["destinations"][0]["accessPolicy"] == good


def test_policy_size_limit_is_5120_bytes(logs, account):
    arn = put(logs, account, "big")["arn"]
    base = account_policy(arn, "111111111111")
    exactly = base[:-1] + " " * (5120 - len(base)) + "}"
    assert len(exactly.encode()) == 5120
    logs.put_destination_policy(destinationName="big", accessPolicy=exactly)
    assert logs.describe_destinations()["destinations"][0]["accessPolicy"] == exactly
    over = base[:-1] + " " * (5121 - len(base)) + "}"
    assert len(over.encode()) == 5121
    assert code_of(logs.put_destination_policy, destinationName="big", accessPolicy=over) == "InvalidParameterException"
    assert logs.describe_destinations()["destinations"][0]["accessPolicy"] == exactly


def test_policy_on_missing_destination(logs, account):
    policy = account_policy(dest_arn(account, "nope"), "111111111111")
    response = error_of(logs.put_destination_policy, destinationName="nope", accessPolicy=policy)
    assert response["Error"]["Code"] == "ResourceNotFoundException"
    assert logs.describe_destinations()["destinations"] == []


def test_force_update_from_accounts_to_organization(logs, account):
    arn = put(logs, account, "shared")["arn"]
    accounts = account_policy(arn, "111111111111")
    logs.put_destination_policy(destinationName="shared", accessPolicy=accounts)
    org = org_policy(arn)
    response = error_of(logs.put_destination_policy, destinationName="shared", accessPolicy=org)
    assert response["Error"]["Code"] == "InvalidParameterException"
    assert logs.describe_destinations()["destinations"][0]["accessPolicy"] == accounts
    response = error_of(logs.put_destination_policy, destinationName="shared", accessPolicy=org, forceUpdate=False)
    assert response["Error"]["Code"] == "InvalidParameterException"
    logs.put_destination_policy(destinationName="shared", accessPolicy=org, forceUpdate=True)
    assert logs.describe_destinations()["destinations"][0]["accessPolicy"] == org


def test_organization_policy_on_a_fresh_destination_needs_no_force(logs, account):
    arn = put(logs, account, "fresh")["arn"]
    org = org_policy(arn)
    logs.put_destination_policy(destinationName="fresh", accessPolicy=org)
    assert logs.describe_destinations()["destinations"][0]["accessPolicy"] == org


# --------------------------------------------------------------------------------------------
# Tags
# --------------------------------------------------------------------------------------------


def test_tag_untag_list(logs, account):
    arn = put(logs, account, "tagged", tags={"keep": "yes"})["arn"]
    logs.tag_resource(resourceArn=arn, tags={"a": "1", "b": "2"})
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"keep": "yes", "a": "1", "b": "2"}
    logs.tag_resource(resourceArn=arn, tags={"a": "overwritten"})
    logs.untag_resource(resourceArn=arn, tagKeys=["b", "not-there"])
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"keep": "yes", "a": "overwritten"}


def test_fifty_tags_and_no_more(logs, account):
    arn = put(logs, account, "tagged", tags={"k00": "v"})["arn"]
    logs.tag_resource(resourceArn=arn, tags={f"k{i:02d}": "v" for i in range(1, 50)})
    assert len(logs.list_tags_for_resource(resourceArn=arn)["tags"]) == 50
    logs.tag_resource(resourceArn=arn, tags={"k07": "overwrite is not a new tag"})
    response = error_of(logs.tag_resource, resourceArn=arn, tags={"k50": "one too many"})
    assert response["Error"]["Code"] == "TooManyTagsException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # botocore adds the modelled members of the error shape to the parsed response.
    assert response.get("resourceName") == arn
    tags = logs.list_tags_for_resource(resourceArn=arn)["tags"]
    assert len(tags) == 50 and "k50" not in tags and tags["k07"] == "overwrite is not a new tag"
    with pytest.raises(logs.exceptions.TooManyTagsException):
        logs.tag_resource(resourceArn=arn, tags={"k50": "v", "k51": "v"})


def test_tags_of_another_accounts_destination(endpoint, logs, account):
    other = new_account()
    put(client(endpoint, other), other, "theirs", tags={"secret": "1"})
    arn = dest_arn(other, "theirs")
    for call, kwargs in [(logs.list_tags_for_resource, {}), (logs.tag_resource, {"tags": {"x": "1"}}),
                         (logs.untag_resource, {"tagKeys": ["secret"]})]:
        assert code_of(call, resourceArn=arn, **kwargs) == "ResourceNotFoundException"
    assert client(endpoint, other).list_tags_for_resource(resourceArn=arn)["tags"] == {"secret": "1"}


def test_tags_of_a_missing_destination(logs, account):
    assert code_of(logs.list_tags_for_resource, resourceArn=dest_arn(account, "none")) == "ResourceNotFoundException"
    assert code_of(logs.tag_resource, resourceArn=dest_arn(account, "none"), tags={"a": "b"}) == "ResourceNotFoundException"


@pytest.mark.parametrize("tags, what", [({"bad#key": "x"}, "Map keys"), ({"k": "bad!value"}, "Map value"),
                                         ({"k" * 129: "v"}, "Map keys")])
def test_tag_model_constraints(logs, account, tags, what):
    arn = put(logs, account, "tagged")["arn"]
    response = error_of(logs.tag_resource, resourceArn=arn, tags=tags)
    assert response["Error"]["Code"] == "InvalidParameterException"
    assert response["Error"]["Message"].startswith("1 validation error detected: Value '{")
    assert f"' at 'tags' failed to satisfy constraint: {what} must satisfy constraint: [Member must" in \
        response["Error"]["Message"]
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {}


@pytest.mark.parametrize("resource", ["garbage", "arn:aws:s3:::bucket", "arn:aws:kinesis:us-east-1:{account}:stream/s"])
def test_tags_of_a_non_logs_arn(logs, account, resource):
    assert code_of(logs.list_tags_for_resource, resourceArn=resource.format(account=account)) == \
        "InvalidParameterException"


@pytest.mark.parametrize("key", ["aws:owner", "AWS:owner"])
def test_reserved_tag_prefix(logs, account, key):
    arn = put(logs, account, "tagged")["arn"]
    assert code_of(logs.tag_resource, resourceArn=arn, tags={key: "x", "fine": "y"}) == "InvalidParameterException"
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {}
    assert code_of(logs.put_destination, destinationName="other", targetArn=stream(account), roleArn=role(account),
                   tags={key: "x"}) == "InvalidParameterException"
    assert names(logs) == ["tagged"]


# --------------------------------------------------------------------------------------------
# Accounts
# --------------------------------------------------------------------------------------------


def test_accounts_are_isolated(endpoint, logs, account):
    mine = put(logs, account, "private")
    logs.put_destination_policy(destinationName="private", accessPolicy=account_policy(mine["arn"], "111111111111"))
    stranger_id = new_account()
    stranger = client(endpoint, stranger_id)
    assert stranger.describe_destinations()["destinations"] == []
    assert stranger.describe_destinations(DestinationNamePrefix="priv")["destinations"] == []
    assert code_of(stranger.delete_destination, destinationName="private") == "ResourceNotFoundException"
    assert code_of(stranger.put_destination_policy, destinationName="private",
                   accessPolicy=account_policy(mine["arn"], "999999999999")) == "ResourceNotFoundException"
    theirs = put(stranger, stranger_id, "private")
    assert theirs["arn"] == dest_arn(stranger_id, "private") != mine["arn"]
    [still_mine] = logs.describe_destinations()["destinations"]
    assert (still_mine["arn"], still_mine["creationTime"], still_mine["targetArn"]) == (
        mine["arn"], mine["creationTime"], mine["targetArn"])
    assert json.loads(still_mine["accessPolicy"])["Statement"][0]["Principal"]["AWS"] == "111111111111"


def test_non_numeric_access_keys_share_the_default_account(endpoint):
    # Emulator mode: a key that is not 12 digits maps to 000000000000.
    ensure_stream(endpoint, "AKIAEXAMPLEKEY")
    created = client(endpoint, "AKIAEXAMPLEKEY").put_destination(
        destinationName=f"default-{new_account()}", targetArn=stream("000000000000"),
        roleArn=role("000000000000"))["destination"]
    assert created["arn"].startswith(f"arn:aws:logs:{REGION}:000000000000:destination:")
    seen = names(client(endpoint, "ANOTHERKEY"), DestinationNamePrefix=created["destinationName"])
    assert seen == [created["destinationName"]]


# --------------------------------------------------------------------------------------------
# Response metadata
# --------------------------------------------------------------------------------------------


def test_every_response_carries_a_request_id(logs, account):
    put(logs, account, "r")
    responses = [
        logs.describe_destinations(),
        logs.list_tags_for_resource(resourceArn=dest_arn(account, "r")),
        logs.delete_destination(destinationName="r"),
    ]
    ids = []
    for response in responses:
        meta = response["ResponseMetadata"]
        assert meta["RequestId"]
        assert meta["HTTPHeaders"]["x-amzn-requestid"] == meta["RequestId"]
        assert meta["HTTPHeaders"]["content-type"] == JSON_11
        ids.append(meta["RequestId"])
    assert len(set(ids)) == len(ids)


def test_errors_carry_matching_error_type_header(logs, logs_unchecked, account):
    errors = [
        error_of(logs.delete_destination, destinationName="missing"),
        error_of(logs_unchecked.describe_destinations, limit=0),
        error_of(logs.describe_destinations, nextToken="garbage"),
    ]
    assert [e["Error"]["Code"] for e in errors] == [
        "ResourceNotFoundException", "InvalidParameterException", "InvalidParameterException"]
    for error in errors:
        meta = error["ResponseMetadata"]
        assert meta["RequestId"]
        assert meta["HTTPHeaders"]["x-amzn-requestid"] == meta["RequestId"]
        assert meta["HTTPHeaders"]["x-amzn-errortype"].split(":")[0] == error["Error"]["Code"]
        assert error["Error"]["Message"]


# --------------------------------------------------------------------------------------------
# Raw requests
# --------------------------------------------------------------------------------------------


def assert_json_error(response, status, code):
    assert response.status == status, (response.status, response.text)
    assert response.json is not None, response.text
    assert response.json["__type"] == code, response.json
    assert response.headers["x-amzn-errortype"] == code
    assert response.headers["x-amzn-requestid"]
    assert isinstance(response.json.get("message"), str) and response.json["message"]


def test_raw_signed_request_works(endpoint, account):
    response = raw(endpoint, "PutDestination", json.dumps(
        {"destinationName": "raw", "targetArn": stream(account), "roleArn": role(account)}), account=account)
    assert response.status == 200, response.text
    assert response.headers["content-type"] == JSON_11
    assert response.json["destination"]["arn"] == dest_arn(account, "raw")
    response = raw(endpoint, "DescribeDestinations", "", account=account)  # an empty body is {}
    assert response.status == 200, response.text
    assert [d["destinationName"] for d in response.json["destinations"]] == ["raw"]


@pytest.mark.parametrize("body", ["{bad json", '{"limit": 5', "\x00", "\"text\"", "[]", "42"])
def test_raw_malformed_body(endpoint, body):
    assert_json_error(raw(endpoint, "DescribeDestinations", body), 400, "SerializationException")


@pytest.mark.parametrize("body", ['{"limit": "ten"}', '{"limit": 1.5}', '{"DestinationNamePrefix": 7}',
                                  '{"limit": true}'])
def test_raw_wrong_member_type(endpoint, body):
    assert_json_error(raw(endpoint, "DescribeDestinations", body), 400, "SerializationException")


def test_raw_wrong_nested_type(endpoint, account):
    body = json.dumps({"destinationName": "d", "targetArn": stream(account), "roleArn": role(account),
                       "tags": ["not", "a", "map"]})
    assert_json_error(raw(endpoint, "PutDestination", body, account=account), 400, "SerializationException")
    assert raw(endpoint, "DescribeDestinations", account=account).json["destinations"] == []


@pytest.mark.parametrize("target", ["Logs_20140328.NoSuchOperation", "Kinesis_20131202.ListStreams",
                                    "DescribeDestinations", "", "Logs_20140328."])
def test_raw_unknown_operation(endpoint, target):
    assert_json_error(raw(endpoint, body="{}", target=target), 400, "UnknownOperationException")


def test_raw_wrong_content_type(endpoint, account):
    response = raw(endpoint, "PutDestination", json.dumps(
        {"destinationName": "ct", "targetArn": stream(account), "roleArn": role(account)}),
        account=account, headers={"Content-Type": "text/plain"})
    assert 400 <= response.status < 500, (response.status, response.text)
    assert response.json and response.json["__type"], response.text
    assert response.headers["x-amzn-errortype"] == response.json["__type"]
    assert raw(endpoint, "DescribeDestinations", account=account).json["destinations"] == []


def test_raw_content_type_parameters_are_fine(endpoint):
    response = raw(endpoint, "DescribeDestinations", headers={"Content-Type": f"{JSON_11}; charset=utf-8"})
    assert response.status == 200, response.text


@pytest.mark.parametrize("authorization", [
    "Bearer xyz",
    "AWS4-HMAC-SHA256 Credential=111111111111/20260101/us-east-1/logs/aws4_request",
    "AWS4-HMAC-SHA256 Credential=111111111111/20260101/us-east-1/logs/aws4_request, SignedHeaders=host, Signature=abc",
])
def test_raw_malformed_authorization(endpoint, authorization):
    response = raw(endpoint, "DescribeDestinations", sign=False,
                   headers={"Authorization": authorization, "X-Amz-Date": "20260101T000000Z"})
    assert_json_error(response, 400, "IncompleteSignatureException")


def test_raw_unsigned_request(endpoint):
    response = raw(endpoint, "DescribeDestinations", "{}", sign=False)
    assert_json_error(response, 403, "MissingAuthenticationTokenException")


def test_raw_unsigned_write_changes_nothing(endpoint, account):
    response = raw(endpoint, "PutDestination", json.dumps(
        {"destinationName": "u", "targetArn": stream(account), "roleArn": role(account)}), sign=False)
    assert response.status == 403
    assert raw(endpoint, "DescribeDestinations", account=account).json["destinations"] == []


def test_foreign_origin_is_refused(endpoint, account):
    body = json.dumps({"destinationName": "o", "targetArn": stream(account), "roleArn": role(account)})
    response = raw(endpoint, "PutDestination", body, account=account, headers={"Origin": "http://evil.example"})
    assert response.status == 403, response.text
    assert response.headers["x-amzn-requestid"]
    assert "access-control-allow-origin" not in response.headers
    assert raw(endpoint, "DescribeDestinations", account=account).json["destinations"] == []


def test_foreign_host_is_refused(endpoint, account):
    body = json.dumps({"destinationName": "h", "targetArn": stream(account), "roleArn": role(account)})
    response = raw(endpoint, "PutDestination", body, account=account, headers={"Host": "evil.example"})
    assert response.status == 403, response.text
    assert response.headers["x-amzn-requestid"]
    assert raw(endpoint, "DescribeDestinations", account=account).json["destinations"] == []
    # A loopback name is fine.
    port = endpoint.rsplit(":", 1)[1]
    response = raw(endpoint, "DescribeDestinations", account=account, headers={"Host": f"localhost:{port}"})
    assert response.status == 200, response.text


def test_cors_preflight_is_refused(endpoint):
    status, headers, _ = send("OPTIONS", endpoint + "/", None, {
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,x-amz-target,content-type"})
    assert status == 403
    assert headers["x-amzn-requestid"]
    assert "access-control-allow-origin" not in headers
    assert "access-control-allow-methods" not in headers


def test_health(endpoint):
    status, headers, text = send("GET", endpoint + "/_sluice/health")
    assert status == 200
    assert headers["x-amzn-requestid"]
    assert headers["content-type"].startswith("application/json")
    health = json.loads(text)
    assert isinstance(health["version"], str) and health["version"]
    assert "logs" in health["services"]
    assert health["auth"] == "emulator"
