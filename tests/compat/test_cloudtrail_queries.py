"""CloudTrail Lake queries through boto3: events put through a channel, found by AWS's sample
queries with the results a plain-Python reference computes, paged; and the query errors."""
import collections
import json
import time

import pytest
from botocore.exceptions import ClientError

from conftest import client, new_account

SELECTORS = [{"Name": "activity", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["ActivityAuditLog"]}]}]
NAMES = ["Login", "Logout", "Download", "Delete"]


def code_of(call, **kwargs):
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"]


def make_events(count):
    return [{"name": NAMES[(i * 7) % 4], "principal": f"user-{i % 4}", "alt": f"u{i % 3}@example.com",
             "time": f"2026-11-{1 + i % 20:02d}T{i % 24:02d}:00:00Z", "uid": f"py-{i}"} for i in range(count)]


def event_data(e, account):
    return json.dumps({"version": "1.0", "userIdentity": {"type": "User", "principalId": e["principal"],
                                                         "details": {"alternateId": e["alt"]}},
                       "eventSource": "app", "eventName": e["name"], "eventTime": e["time"], "UID": e["uid"],
                       "recipientAccountId": account})


def setup_store(endpoint, account, events):
    cloudtrail = client(endpoint, account, "cloudtrail")
    arn = cloudtrail.create_event_data_store(Name="queries", AdvancedEventSelectors=SELECTORS,
                                             TerminationProtectionEnabled=False)["EventDataStoreArn"]
    channel = cloudtrail.create_channel(Name="queries", Source="Custom", Destinations=[
        {"Type": "EVENT_DATA_STORE", "Location": arn}])["ChannelArn"]
    data = client(endpoint, account, "cloudtrail-data")
    for start in range(0, len(events), 100):
        chunk = events[start:start + 100]
        out = data.put_audit_events(channelArn=channel, auditEvents=[
            {"id": str(i), "eventData": event_data(e, account)} for i, e in enumerate(chunk)])
        assert out["failed"] == []
    return cloudtrail, arn.rsplit("/", 1)[1]


def run(cloudtrail, statement, page=1000):
    query_id = cloudtrail.start_query(QueryStatement=statement)["QueryId"]
    for _ in range(1200):
        status = cloudtrail.describe_query(QueryId=query_id)["QueryStatus"]
        if status not in ("QUEUED", "RUNNING"):
            break
        time.sleep(0.05)
    assert status == "FINISHED", cloudtrail.describe_query(QueryId=query_id)
    rows, token = [], None
    while True:
        kwargs = {"QueryId": query_id, "MaxQueryResults": page}
        if token:
            kwargs["NextToken"] = token
        out = cloudtrail.get_query_results(**kwargs)
        rows += [[next(iter(column.items())) for column in row] for row in out["QueryResultRows"]]
        token = out.get("NextToken")
        if not token:
            return query_id, rows


def test_sample_queries_match_a_python_reference(endpoint):
    account = new_account()
    events = make_events(120)
    cloudtrail, store = setup_store(endpoint, account, events)

    _, rows = run(cloudtrail, f"SELECT eventData.eventName, COUNT(*) AS total FROM {store} "
                              "GROUP BY eventData.eventName ORDER BY total DESC, eventData.eventName")
    counts = collections.Counter(e["name"] for e in events)
    expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    assert rows == [[("eventName", n), ("total", str(c))] for n, c in expected]

    _, rows = run(cloudtrail, f"SELECT eventData.UID FROM {store} WHERE eventtime >= '2026-11-05 00:00:00' "
                              "AND eventtime < '2026-11-07 00:00:00' ORDER BY 1", page=3)
    assert [r[0][1] for r in rows] == sorted(e["uid"] for e in events if "2026-11-05" <= e["time"] < "2026-11-07")

    _, rows = run(cloudtrail, f"SELECT element_at(eventData.userIdentity.details, 'alternateId'), count(*) "
                              f"FROM {store} GROUP BY 1 ORDER BY 1")
    alts = collections.Counter(e["alt"] for e in events)
    assert rows == [[("_col0", a), ("_col1", str(c))] for a, c in sorted(alts.items())]


def test_query_errors_and_cancel(endpoint):
    account = new_account()
    cloudtrail, store = setup_store(endpoint, account, make_events(20))
    assert code_of(cloudtrail.start_query, QueryStatement="SELEC 1") == "InvalidQueryStatementException"
    assert code_of(cloudtrail.start_query, QueryStatement=f"DROP TABLE {store}") == "InvalidQueryStatementException"
    assert code_of(cloudtrail.start_query, QueryStatement="SELECT * FROM 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0") == \
        "EventDataStoreNotFoundException"
    stranger = client(endpoint, new_account(), "cloudtrail")
    assert code_of(stranger.start_query, QueryStatement=f"SELECT * FROM {store}") == \
        "EventDataStoreNotFoundException"
    query_id, _ = run(cloudtrail, f"SELECT count(*) FROM {store}")
    assert code_of(cloudtrail.cancel_query, QueryId=query_id) == "InactiveQueryException"
    assert code_of(stranger.describe_query, QueryId=query_id) == "QueryIdNotFoundException"
    listed = cloudtrail.list_queries(EventDataStore=store)["Queries"]
    assert [q["QueryId"] for q in listed] == [query_id] and listed[0]["QueryStatus"] == "FINISHED"
