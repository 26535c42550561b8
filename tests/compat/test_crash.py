"""Acknowledged writes survive `kill -9` and a restart on the same data directory."""
import json

import pytest

from conftest import REGION, Server, client


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def policy_for(arn, *accounts):
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": list(accounts)},
        "Action": "logs:PutSubscriptionFilter", "Resource": arn}]})


def create_streams(endpoint, account, *names):
    """The streams destinations point at: AWS refuses a destination whose stream does not exist."""
    kinesis = client(endpoint, account, "kinesis")
    for name in names:
        kinesis.create_stream(StreamName=name, ShardCount=1)


def snapshot(logs):
    """Every destination of the account, with its tags, keyed by name."""
    found = {}
    for page in logs.get_paginator("describe_destinations").paginate():
        for destination in page["destinations"]:
            tags = logs.list_tags_for_resource(resourceArn=destination["arn"])["tags"]
            found[destination["destinationName"]] = {**destination, "tags": tags}
    return found


def test_acknowledged_writes_survive_kill_9(data_dir):
    accounts = ["510000000001", "510000000002"]
    server = Server(data_dir)
    try:
        expected = {account: {} for account in accounts}
        for account in accounts:
            create_streams(server.endpoint, account, "s", "moved", *(f"s{i}" for i in range(6)))
            logs = client(server.endpoint, account)
            for i in range(6):
                name = f"dest-{i}"
                d = logs.put_destination(destinationName=name, targetArn=f"arn:aws:kinesis:{REGION}:{account}:stream/s{i}",
                                         roleArn=f"arn:aws:iam::{account}:role/r", tags={"i": str(i)})["destination"]
                expected[account][name] = {**d, "tags": {"i": str(i)}}
        a, b = (client(server.endpoint, account) for account in accounts)
        a_exp, b_exp = expected[accounts[0]], expected[accounts[1]]

        # An in-place update keeps arn and creationTime.
        updated = a.put_destination(destinationName="dest-1", targetArn=f"arn:aws:kinesis:{REGION}:{accounts[0]}:stream/moved",
                                    roleArn=f"arn:aws:iam::{accounts[0]}:role/r2")["destination"]
        a_exp["dest-1"].update(targetArn=updated["targetArn"], roleArn=updated["roleArn"])
        # Policies.
        for name in ["dest-2", "dest-3"]:
            policy = policy_for(a_exp[name]["arn"], "111111111111", "222222222222")
            a.put_destination_policy(destinationName=name, accessPolicy=policy)
            a_exp[name]["accessPolicy"] = policy
        policy = policy_for(b_exp["dest-0"]["arn"], accounts[0])
        b.put_destination_policy(destinationName="dest-0", accessPolicy=policy)
        b_exp["dest-0"]["accessPolicy"] = policy
        # A delete.
        a.delete_destination(destinationName="dest-4")
        del a_exp["dest-4"]
        # A page token issued before the crash.
        first_page = b.describe_destinations(limit=2)
        # Tag changes, the last one the last acknowledged write before the kill.
        b.untag_resource(resourceArn=b_exp["dest-5"]["arn"], tagKeys=["i"])
        b_exp["dest-5"]["tags"] = {}
        a.tag_resource(resourceArn=a_exp["dest-3"]["arn"], tags={"owner": "ops", "i": "three"})
        a_exp["dest-3"]["tags"] = {"owner": "ops", "i": "three"}
    finally:
        server.kill9()
    assert server.process.returncode == -9

    server = Server(data_dir)
    try:
        for account in accounts:
            after = snapshot(client(server.endpoint, account))
            assert after == expected[account], account
        # Fields one by one too, so that a failure says which one.
        a_after = snapshot(client(server.endpoint, accounts[0]))
        assert a_after["dest-1"]["creationTime"] == expected[accounts[0]]["dest-1"]["creationTime"]
        assert a_after["dest-1"]["targetArn"].endswith(":stream/moved")
        assert a_after["dest-3"]["tags"] == {"owner": "ops", "i": "three"}
        assert "dest-4" not in a_after
        # A token issued before the crash still pages on after it.
        b = client(server.endpoint, accounts[1])
        rest = b.describe_destinations(nextToken=first_page["nextToken"])["destinations"]
        paged = [d["destinationName"] for d in first_page["destinations"] + rest]
        assert paged == sorted(expected[accounts[1]])
        # And the restarted server takes writes.
        b.put_destination(destinationName="after", targetArn=f"arn:aws:kinesis:{REGION}:{accounts[1]}:stream/s",
                          roleArn=f"arn:aws:iam::{accounts[1]}:role/r")
        assert "after" in snapshot(b)
    finally:
        server.stop()


def test_kill_9_under_concurrent_writes_loses_no_acknowledged_write(data_dir):
    """Writers keep going while the server is killed: every acknowledged put must be there after
    the restart, and nothing may appear that was never sent."""
    import threading

    from botocore.exceptions import BotoCoreError, ClientError

    account = "510000000009"
    server = Server(data_dir)
    acknowledged, attempted, lock = set(), set(), threading.Lock()
    enough = threading.Event()

    create_streams(server.endpoint, account, "s")
    # boto3 clients may be used from threads, but are made in one (the default session is shared).
    clients = [client(server.endpoint, account) for _ in range(4)]

    def writer(worker):
        logs = clients[worker]
        for i in range(200):
            name = f"w{worker}-{i:03d}"
            with lock:
                attempted.add(name)
            try:
                logs.put_destination(destinationName=name, targetArn=f"arn:aws:kinesis:{REGION}:{account}:stream/s",
                                     roleArn=f"arn:aws:iam::{account}:role/r", tags={"w": str(worker)})
            except (BotoCoreError, ClientError):
                return  # the server is gone
            with lock:
                acknowledged.add(name)
                if len(acknowledged) >= 60:
                    enough.set()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    try:
        assert enough.wait(timeout=20), "the writers made no progress"
    finally:
        server.kill9()
        for thread in threads:
            thread.join(timeout=20)
    with lock:
        acked, sent = set(acknowledged), set(attempted)
    assert len(acked) >= 60

    server = Server(data_dir)
    try:
        logs = client(server.endpoint, account)
        present = {d["destinationName"]: d for page in logs.get_paginator("describe_destinations").paginate()
                   for d in page["destinations"]}
        assert acked - set(present) == set(), "acknowledged writes lost"
        assert set(present) - sent == set(), "destinations that were never sent"
        some = sorted(acked)[len(acked) // 2]
        assert logs.list_tags_for_resource(resourceArn=present[some]["arn"])["tags"] == {"w": some[1]}
    finally:
        server.stop()
