"""Helpers for bench/cluster.sh (run with the bench venv's python).

  seed ENDPOINT DIR   store 100 Logs destinations (each with its Kinesis stream) and one log
                      group with one stream in account 111111111111, us-east-1, and write two
                      requests exactly as boto3 signed and sent them: DescribeDestinations {}
                      (first page, 50 of 100) and PutLogEvents with 100 events of 80 bytes, to
                      DIR/<operation>/{request.lua,headers,body,method,path}
"""
import sys
import time

from read_path import capture, seed_destinations


def seed(endpoint, out):
    logs = seed_destinations(endpoint)
    logs.create_log_group(logGroupName="/bench/cluster")
    logs.create_log_stream(logGroupName="/bench/cluster", logStreamName="stream")
    got = capture(logs, out, "DescribeDestinations")
    assert len(got["destinations"]) == 50 and got.get("nextToken"), got
    now = int(time.time() * 1000)
    # The same batch is replayed for the whole run: its timestamps stay well inside the
    # accepted window (14 days back, 2 hours ahead) for far longer than a run.
    capture(logs, out, "PutLogEvents", logGroupName="/bench/cluster", logStreamName="stream",
            logEvents=[{"timestamp": now + i,
                        "message": f"event {i:03d} " + "x" * 70} for i in range(100)])


if __name__ == "__main__":
    {"seed": seed}[sys.argv[1]](*sys.argv[2:])
