"""Helpers for bench/s3.sh (run with the bench venv's python).

  putget ENDPOINT SIZE_MIB COUNT SRC    PutObject COUNT objects of SIZE_MIB (the bytes of SRC)
                                        into a fresh bucket, then GetObject each back, checking
                                        every download's MD5; prints "<put MiB/s> <get MiB/s>"
  ceiling DIR SIZE_MIB COUNT SRC        the same bytes as plain files in DIR: write + fsync
                                        (file and directory), then read back; same output
  multipart ENDPOINT SRC DEST           boto3 upload_file of SRC (multipart: 8 MiB parts,
                                        10 threads), then download_file to DEST, checking the
                                        SHA-256; prints "<upload MiB/s> <download MiB/s> <parts>"

Timings are wall-clock around the calls only; the client (boto3, MD5/CRC32 of each body) runs
on the same machine and is the same for every server.
"""
import hashlib
import os
import sys
import time

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

ACCOUNT = "111111111111"
REGION = "us-east-1"
MIB = 1 << 20


def client(endpoint):
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=ACCOUNT, aws_secret_access_key="not-checked",
                        config=Config(retries={"max_attempts": 1},
                                      s3={"addressing_style": "path"},
                                      read_timeout=300))


def rate(nbytes, seconds):
    return f"{nbytes / MIB / seconds:.1f}"


def read_src(src, size_mib):
    with open(src, "rb") as f:
        data = f.read(size_mib * MIB)
    if len(data) != size_mib * MIB:
        sys.exit(f"{src} holds fewer than {size_mib} MiB")
    return data


def putget(endpoint, size_mib, count, src):
    size_mib, count = int(size_mib), int(count)
    data = read_src(src, size_mib)
    digest = hashlib.md5(data).hexdigest()
    s3 = client(endpoint)
    bucket = f"bench-{size_mib}mib-{os.getpid()}"
    s3.create_bucket(Bucket=bucket)
    t0 = time.perf_counter()
    for i in range(count):
        etag = s3.put_object(Bucket=bucket, Key=f"o/{i}", Body=data)["ETag"].strip('"')
        if etag != digest:
            sys.exit(f"PutObject o/{i}: ETag {etag}, expected {digest}")
    put = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(count):
        body = s3.get_object(Bucket=bucket, Key=f"o/{i}")["Body"]
        h = hashlib.md5()
        got = 0
        for chunk in body.iter_chunks(MIB):
            h.update(chunk)
            got += len(chunk)
        if got != len(data) or h.hexdigest() != digest:
            sys.exit(f"GetObject o/{i}: {got} bytes, MD5 {h.hexdigest()}, expected {digest}")
    get = time.perf_counter() - t0
    listed = sum(page.get("KeyCount", 0)
                 for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket))
    if listed != count:
        sys.exit(f"ListObjectsV2 saw {listed} objects, expected {count}")
    for i in range(count):
        s3.delete_object(Bucket=bucket, Key=f"o/{i}")
    s3.delete_bucket(Bucket=bucket)
    print(rate(count * len(data), put), rate(count * len(data), get))


def ceiling(directory, size_mib, count, src):
    size_mib, count = int(size_mib), int(count)
    data = read_src(src, size_mib)
    digest = hashlib.md5(data).hexdigest()
    os.makedirs(directory, exist_ok=True)
    paths = [os.path.join(directory, str(i)) for i in range(count)]
    t0 = time.perf_counter()
    for p in paths:
        # What a durable PutObject needs at least: the bytes written and fsynced, and the
        # directory entry fsynced.
        with open(p, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        fd = os.open(directory, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    put = time.perf_counter() - t0
    t0 = time.perf_counter()
    for p in paths:
        h = hashlib.md5()
        with open(p, "rb") as f:
            while chunk := f.read(MIB):
                h.update(chunk)
        if h.hexdigest() != digest:
            sys.exit(f"{p}: MD5 {h.hexdigest()}, expected {digest}")
    get = time.perf_counter() - t0
    for p in paths:
        os.remove(p)
    print(rate(count * len(data), put), rate(count * len(data), get))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * MIB):
            h.update(chunk)
    return h.hexdigest()


def multipart(endpoint, src, dest):
    s3 = client(endpoint)
    bucket = f"bench-multipart-{os.getpid()}"
    s3.create_bucket(Bucket=bucket)
    size = os.path.getsize(src)
    transfer = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB,
                              max_concurrency=10)
    t0 = time.perf_counter()
    s3.upload_file(src, bucket, "big", Config=transfer)
    up = time.perf_counter() - t0
    head = s3.head_object(Bucket=bucket, Key="big")
    parts = head["ETag"].strip('"').rpartition("-")[2]
    if head["ContentLength"] != size or not parts.isdigit():
        sys.exit(f"HeadObject: {head['ContentLength']} bytes, ETag {head['ETag']}: not a "
                 f"{size}-byte multipart object")
    t0 = time.perf_counter()
    s3.download_file(bucket, "big", dest, Config=transfer)
    down = time.perf_counter() - t0
    if sha256_file(dest) != sha256_file(src):
        sys.exit("the downloaded object differs from the uploaded file")
    os.remove(dest)
    s3.delete_object(Bucket=bucket, Key="big")
    s3.delete_bucket(Bucket=bucket)
    print(rate(size, up), rate(size, down), parts)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"putget": putget, "ceiling": ceiling, "multipart": multipart}[command](*args)
