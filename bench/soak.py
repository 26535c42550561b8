"""Soak load for Sluice: mixed calls from several client processes for a fixed time, with the
server's RSS and the completed calls sampled every interval.

    python bench/soak.py ENDPOINT SERVER_PID [--seconds 600] [--clients 4] [--interval 10]

Every worker is its own process with its own boto3 clients and account (a 12-digit access key),
so accounts stay apart as in real use. Each round of a worker makes the calls a log shipper and
its readers make: PutLogEvents (a batch of 20 events, some matching a subscription filter that
delivers into a Kinesis stream), GetLogEvents on the newest minute, FilterLogEvents on the newest
minute, DescribeLogGroups, DescribeDestinations, Kinesis PutRecords and GetRecords, and a
PutDestination / DeleteDestination pair (control-plane churn). Data keeps growing for the whole
run, so flat throughput means reads do not slow down with the amount stored.

The load is bounded by --seconds and stops by itself; traffic goes only to ENDPOINT (loopback).
Prints one line per interval, then a Markdown table and the flatness figures.
"""

import argparse
import multiprocessing as mp
import sys
import time

import boto3
from botocore.config import Config

REGION = "us-east-1"


def clients(endpoint, account):
    session = boto3.session.Session(
        aws_access_key_id=account, aws_secret_access_key="soak", region_name=REGION
    )
    config = Config(retries={"max_attempts": 1}, tcp_keepalive=True)
    return (
        session.client("logs", endpoint_url=endpoint, config=config),
        session.client("kinesis", endpoint_url=endpoint, config=config),
    )


def worker(endpoint, index, deadline, calls, errors):
    account = f"{900000000000 + index:012d}"
    logs, kinesis = clients(endpoint, account)
    group, stream, target = "soak", "web", "soak-target"
    arn = f"arn:aws:kinesis:{REGION}:{account}:stream/{target}"
    role = f"arn:aws:iam::{account}:role/soak"
    for call in (
        lambda: kinesis.create_stream(StreamName=target, ShardCount=1),
        lambda: logs.create_log_group(logGroupName=group),
        lambda: logs.create_log_stream(logGroupName=group, logStreamName=stream),
        lambda: logs.put_subscription_filter(
            logGroupName=group, filterName="errors", filterPattern="ERROR",
            destinationArn=arn, roleArn=role),
    ):
        try:
            call()
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        except kinesis.exceptions.ResourceInUseException:
            pass
    shard = kinesis.list_shards(StreamName=target)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName=target, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    round_no = 0
    while time.time() < deadline:
        round_no += 1
        now_ms = int(time.time() * 1000)
        batch = [
            {"timestamp": now_ms, "message": f"{'ERROR' if i % 4 == 0 else 'INFO'} round {round_no} event {i} "
             + "x" * 120}
            for i in range(20)
        ]
        steps = [
            lambda: logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch),
            lambda: logs.get_log_events(logGroupName=group, logStreamName=stream,
                                        startTime=now_ms - 60_000, limit=50),
            lambda: logs.filter_log_events(logGroupName=group, filterPattern="ERROR",
                                           startTime=now_ms - 60_000, limit=50),
            lambda: logs.describe_log_groups(limit=10),
            lambda: logs.put_destination(destinationName=f"d{round_no % 50}", targetArn=arn,
                                         roleArn=role),
            lambda: logs.describe_destinations(limit=50),
            lambda: logs.delete_destination(destinationName=f"d{(round_no + 25) % 50}"),
            lambda: kinesis.put_records(StreamName=target, Records=[
                {"Data": b"r" * 200, "PartitionKey": str(i)} for i in range(10)]),
        ]
        for step in steps:
            try:
                step()
                with calls.get_lock():
                    calls.value += 1
            except logs.exceptions.ResourceNotFoundException:
                with calls.get_lock():
                    calls.value += 1  # deleting a destination that is not there: a real answer
            except Exception as err:  # noqa: BLE001 - counted and reported, never hidden
                with errors.get_lock():
                    errors.value += 1
                if errors.value <= 5:
                    print(f"worker {index}: {type(err).__name__}: {err}", file=sys.stderr)
        try:
            got = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            iterator = got["NextShardIterator"]
            with calls.get_lock():
                calls.value += 1
        except Exception as err:  # noqa: BLE001
            with errors.get_lock():
                errors.value += 1
            print(f"worker {index}: GetRecords: {err}", file=sys.stderr)
            iterator = kinesis.get_shard_iterator(
                StreamName=target, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("pid", type=int)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--interval", type=int, default=10)
    args = parser.parse_args()

    calls, errors = mp.Value("q", 0), mp.Value("q", 0)
    start = time.time()
    deadline = start + args.seconds
    procs = [mp.Process(target=worker, args=(args.endpoint, i, deadline, calls, errors))
             for i in range(args.clients)]
    idle = rss_mib(args.pid)
    for proc in procs:
        proc.start()
    samples = []
    last_calls, next_at = 0, start + args.interval
    while time.time() < deadline:
        time.sleep(max(0.0, next_at - time.time()))
        next_at += args.interval
        done = calls.value
        samples.append((round(time.time() - start), rss_mib(args.pid), done - last_calls, errors.value))
        last_calls = done
        print(f"t={samples[-1][0]:>4}s rss={samples[-1][1]:7.1f} MiB calls={samples[-1][2]:>6} "
              f"errors={samples[-1][3]}", flush=True)
    for proc in procs:
        proc.join(timeout=60)
    time.sleep(args.interval)
    after_idle = rss_mib(args.pid)

    print()
    print("| t (s) | RSS (MiB) | calls in the interval | errors so far |")
    print("|---|---|---|---|")
    for t, rss, n, err in samples:
        print(f"| {t} | {rss:.1f} | {n} | {err} |")
    rates = [n for _, _, n, _ in samples]
    rss = [r for _, r, _, _ in samples]
    k = max(1, len(samples) // 10)
    first, last = sum(rates[:k]) / k, sum(rates[-k:]) / k
    print()
    print(f"idle RSS before load: {idle:.1f} MiB; {args.interval} s after load: {after_idle:.1f} MiB")
    print(f"RSS under load: min {min(rss):.1f}, max {max(rss):.1f}; "
          f"first {k} samples mean {sum(rss[:k]) / k:.1f}, last {k} mean {sum(rss[-k:]) / k:.1f} MiB")
    print(f"throughput: first {k} intervals {first / args.interval:.0f} calls/s, "
          f"last {k} {last / args.interval:.0f} calls/s, ratio last/first {last / first:.2f}")
    print(f"calls: {sum(rates)}, errors: {errors.value}")
    return 1 if errors.value else 0


if __name__ == "__main__":
    sys.exit(main())
