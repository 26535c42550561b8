"""Acknowledged writes survive kill -9 and a restart."""
import json

from conftest import Server, logs_client


def test_state_survives_kill_9(tmp_path):
    account = "333344445555"
    server = Server(tmp_path)
    logs = logs_client(server.endpoint, account)
    created = {}
    for i in range(10):
        d = logs.put_destination(destinationName=f"d{i}", targetArn=f"arn:aws:kinesis:us-east-1:{account}:stream/s",
                                 roleArn=f"arn:aws:iam::{account}:role/r", tags={"i": str(i)})["destination"]
        created[d["destinationName"]] = d
    policy = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "111111111111"},
                                        "Action": "logs:PutSubscriptionFilter", "Resource": "*"}]})
    logs.put_destination_policy(destinationName="d3", accessPolicy=policy)
    server.kill9()

    server = Server(tmp_path)
    try:
        logs = logs_client(server.endpoint, account)
        found = {d["destinationName"]: d for d in logs.describe_destinations()["destinations"]}
        assert set(found) == set(created)
        for name, before in created.items():
            after = found[name]
            assert (after["arn"], after["creationTime"], after["targetArn"]) == (before["arn"], before["creationTime"], before["targetArn"])
        assert found["d3"]["accessPolicy"] == policy
        assert logs.list_tags_for_resource(resourceArn=found["d7"]["arn"])["tags"] == {"i": "7"}
    finally:
        server.stop()
