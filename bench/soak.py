"""Mixed load against a running Sluice, with its RSS and throughput sampled every 10 seconds.

    python3 bench/soak.py --endpoint http://127.0.0.1:4566 --pid PID [--seconds 120] [--clients 4]

Each client (a thread with its own boto3 clients and its own account) loops over:
PutLogEvents (20 events, some matching a subscription filter that delivers into a Kinesis
stream), GetLogEvents (newest 100, and oldest 100), FilterLogEvents (a pattern, limit 100),
DescribeLogGroups, Kinesis PutRecords (50 records) and GetRecords (from where it left off).
Every 10 seconds it prints the server's RSS (from /proc/PID/status) and the requests completed
in the last 10 seconds; at the end, the same as one line of JSON for BENCHMARKS.md.
"""
import argparse
import json
import threading
import time

import boto3
from botocore.config import Config

REGION = "us-east-1"


def clients(endpoint, account):
    config = Config(retries={"max_attempts": 1}, max_pool_connections=4)
    make = lambda service: boto3.client(  # noqa: E731
        service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id=account,
        aws_secret_access_key="not-checked", config=config)
    return make("logs"), make("kinesis")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def setup(endpoint, account):
    logs, kinesis = clients(endpoint, account)
    kinesis.create_stream(StreamName="soak", ShardCount=1)
    logs.create_log_group(logGroupName="soak")
    logs.create_log_stream(logGroupName="soak", logStreamName="s")
    logs.put_subscription_filter(
        logGroupName="soak", filterName="errors", filterPattern="ERROR",
        destinationArn=f"arn:aws:kinesis:{REGION}:{account}:stream/soak",
        roleArn=f"arn:aws:iam::{account}:role/CWLtoKinesisRole")


def worker(endpoint, account, stop, counts, errors, index):
    logs, kinesis = clients(endpoint, account)
    iterator = kinesis.get_shard_iterator(
        StreamName="soak", ShardId="shardId-000000000000",
        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    n = 0
    calls = [
        lambda: logs.put_log_events(
            logGroupName="soak", logStreamName="s",
            logEvents=[{"timestamp": int(time.time() * 1000),
                        "message": f"{'ERROR' if i % 10 == 0 else 'INFO'} request {n}-{i} took {i} ms"}
                       for i in range(20)]),
        lambda: logs.get_log_events(logGroupName="soak", logStreamName="s", limit=100),
        lambda: logs.get_log_events(logGroupName="soak", logStreamName="s", limit=100,
                                    startFromHead=True),
        lambda: logs.filter_log_events(logGroupName="soak", filterPattern="ERROR", limit=100),
        lambda: logs.describe_log_groups(),
        lambda: kinesis.put_records(
            StreamName="soak",
            Records=[{"Data": f"record {n}-{i}".encode(), "PartitionKey": str(i)}
                     for i in range(50)]),
    ]
    while not stop.is_set():
        for call in calls:
            try:
                call()
                counts[index] += 1
            except Exception as err:  # noqa: BLE001 - counted and shown, the load goes on
                errors[index] += 1
                errors.setdefault("last", repr(err))
        try:
            out = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            iterator = out["NextShardIterator"]
            counts[index] += 1
        except Exception as err:  # noqa: BLE001
            errors[index] += 1
            errors.setdefault("last", repr(err))
        n += 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    accounts = [f"{900000000000 + i + int(time.time()) % 100000 * 10}" for i in range(args.clients)]
    for account in accounts:
        setup(args.endpoint, account)
    stop = threading.Event()
    counts = [0] * args.clients
    errors = {i: 0 for i in range(args.clients)}
    threads = [threading.Thread(target=worker, daemon=True,
                                args=(args.endpoint, a, stop, counts, errors, i))
               for i, a in enumerate(accounts)]
    samples = [{"t": 0, "rss_mb": round(rss_kib(args.pid) / 1024, 1), "requests": 0}]
    print(f"t=0s rss={samples[0]['rss_mb']} MB", flush=True)
    for thread in threads:
        thread.start()
    done_before = 0
    for step in range(1, args.seconds // 10 + 1):
        time.sleep(10)
        done = sum(counts)
        sample = {"t": step * 10, "rss_mb": round(rss_kib(args.pid) / 1024, 1),
                  "requests": done - done_before}
        done_before = done
        samples.append(sample)
        print(f"t={sample['t']}s rss={sample['rss_mb']} MB requests/10s={sample['requests']}",
              flush=True)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    time.sleep(10)
    idle = round(rss_kib(args.pid) / 1024, 1)
    failed = sum(v for k, v in errors.items() if k != "last")
    print(f"idle 10s later: rss={idle} MB; errors={failed} {errors.get('last', '')}", flush=True)
    print(json.dumps({"samples": samples, "idle_rss_mb": idle, "errors": failed}))


if __name__ == "__main__":
    main()
