"""Helpers for bench/firehose.sh (run with the bench venv's python).

  sluice ENDPOINT COUNT SIZE COMPRESSION    PutRecordBatch COUNT records of SIZE bytes (500 a
                                            call, 4 client threads) into a fresh delivery
                                            stream (SizeInMBs 5, IntervalInSeconds 1) and waits
                                            until every byte is readable as S3 objects; then
                                            reads every object back and checks the records
  ceiling DIR COUNT SIZE COMPRESSION        the same records, already in memory, cut into the
                                            same 5 MiB buffers: concatenate, gzip (if asked),
                                            one file write + fsync per buffer

Both print "<records/s> <MiB/s of records> <objects>". The sluice figure is wall-clock from
the first PutRecordBatch to the moment the last object is listed with the full byte count.
"""
import concurrent.futures
import gzip
import os
import sys
import time

import boto3
from botocore.config import Config

ACCOUNT = "111111111111"
REGION = "us-east-1"
MIB = 1 << 20
BUFFER_MIB = 5
PER_CALL = 500
THREADS = 4


def client(endpoint, service):
    extra = {"s3": {"addressing_style": "path"}} if service == "s3" else {}
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=ACCOUNT, aws_secret_access_key="not-checked",
                        config=Config(retries={"max_attempts": 3}, read_timeout=300, **extra))


def records(count, size):
    """Distinct fixed-size records, JSON-like and about as compressible as log lines."""
    out = []
    for n in range(count):
        head = b'{"n":%09d,"data":"' % n
        body = os.urandom((size - len(head) - 3) // 2).hex().encode()
        record = head + body + b'"}\n'
        out.append(record.ljust(size, b" ")[:size])
    return out


def result(count, size, seconds, objects):
    print(f"{count / seconds:.0f} {count * size / MIB / seconds:.1f} {objects}")


def sluice(endpoint, count, size, compression):
    count, size = int(count), int(size)
    data = records(count, size)
    firehose, s3 = client(endpoint, "firehose"), client(endpoint, "s3")
    bucket = f"bench-firehose-{os.getpid()}-{compression.lower()}"
    name = f"bench-{compression.lower()}"
    s3.create_bucket(Bucket=bucket)
    firehose.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::111111111111:role/bench",
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "BufferingHints": {"SizeInMBs": BUFFER_MIB, "IntervalInSeconds": 1},
            "CompressionFormat": compression})
    while firehose.describe_delivery_stream(DeliveryStreamName=name)[
            "DeliveryStreamDescription"]["DeliveryStreamStatus"] != "ACTIVE":
        time.sleep(0.05)
    calls = [data[i:i + PER_CALL] for i in range(0, count, PER_CALL)]
    clients = [client(endpoint, "firehose") for _ in range(THREADS)]

    def put(index):
        answer = clients[index % THREADS].put_record_batch(
            DeliveryStreamName=name, Records=[{"Data": r} for r in calls[index]])
        if answer["FailedPutCount"]:
            sys.exit(f"call {index}: {answer['FailedPutCount']} records failed")

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(put, range(len(calls))))
    put_seconds = time.perf_counter() - t0
    # Delivered when the objects hold every record (gzip: count by decompressing at the end).
    while True:
        listed = [o for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                  for o in page.get("Contents", [])]
        if compression == "UNCOMPRESSED":
            done = sum(o["Size"] for o in listed) >= count * size
        else:
            done = delivered(s3, bucket, listed, compression) >= count * size
        if done:
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    check(s3, bucket, listed, compression, data)
    print(f"puts done after {put_seconds:.2f} s", file=sys.stderr)
    result(count, size, seconds, len(listed))


_seen = {}


def body(s3, bucket, key, compression):
    if key not in _seen:
        raw = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        _seen[key] = gzip.decompress(raw) if compression == "GZIP" else raw
    return _seen[key]


def delivered(s3, bucket, listed, compression):
    return sum(len(body(s3, bucket, o["Key"], compression)) for o in listed)


def check(s3, bucket, listed, compression, data):
    size = len(data[0])
    got = []
    for o in listed:
        content = body(s3, bucket, o["Key"], compression)
        got.extend(content[i:i + size] for i in range(0, len(content), size))
    if sorted(got) != sorted(data):
        sys.exit("the delivered records differ from the records put")


def ceiling(directory, count, size, compression):
    count, size = int(count), int(size)
    data = records(count, size)
    os.makedirs(directory, exist_ok=True)
    limit = BUFFER_MIB * MIB
    t0 = time.perf_counter()
    objects = 0
    start = 0
    while start < count:
        end, nbytes = start, 0
        while end < count and nbytes < limit:
            nbytes += len(data[end])
            end += 1
        buffer = b"".join(data[start:end])
        if compression == "GZIP":
            buffer = gzip.compress(buffer, compresslevel=6)
        path = os.path.join(directory, f"object-{objects}")
        with open(path, "wb") as f:
            f.write(buffer)
            f.flush()
            os.fsync(f.fileno())
        objects += 1
        start = end
    dir_fd = os.open(directory, os.O_RDONLY)
    os.fsync(dir_fd)
    os.close(dir_fd)
    result(count, size, time.perf_counter() - t0, objects)


if __name__ == "__main__":
    {"sluice": sluice, "ceiling": ceiling}[sys.argv[1]](*sys.argv[2:])
