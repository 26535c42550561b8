"""Helpers for bench/describe_destinations.sh (run with the bench venv's python).

  sign ENDPOINT DIR     write one SigV4-signed DescribeDestinations request (body {}) as
                        DIR/request.lua (for wrk), DIR/headers + DIR/body (for curl)
  seed ENDPOINT         create 100 destinations in account 111111111111, us-east-1, then
                        list them all through boto3's paginator and print how many it saw
  check FILE            read a DescribeDestinations response body; print
                        "<destinations in it> <has nextToken: yes|no> <bytes>"
"""
import json
import sys

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

ACCOUNT = "111111111111"
REGION = "us-east-1"
COUNT = 100
# No limit and no nextToken: the first page. DescribeDestinations' default page is 50, so with
# 100 stored destinations a server that pages returns 50 and a nextToken.
BODY = "{}"


def sign(endpoint, out):
    req = AWSRequest(method="POST", url=endpoint + "/", data=BODY,
                     headers={"X-Amz-Target": "Logs_20140328.DescribeDestinations",
                              "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(ACCOUNT, "not-checked"), "logs", REGION).add_auth(req)
    # Host and Content-Length are set by wrk and curl from the URL and the body.
    headers = {k: v for k, v in req.headers.items() if k.lower() not in ("host", "content-length")}
    with open(f"{out}/request.lua", "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = {json.dumps(BODY)}\n")
        for k, v in headers.items():
            f.write(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n")
    with open(f"{out}/headers", "w") as f:
        f.write("".join(f"{k}: {v}\n" for k, v in headers.items()))
    with open(f"{out}/body", "w") as f:
        f.write(BODY)


def seed(endpoint):
    logs = boto3.client("logs", endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=ACCOUNT, aws_secret_access_key="not-checked",
                        config=Config(retries={"max_attempts": 1}))
    kinesis = boto3.client("kinesis", endpoint_url=endpoint, region_name=REGION,
                           aws_access_key_id=ACCOUNT, aws_secret_access_key="not-checked",
                           config=Config(retries={"max_attempts": 1}))
    for i in range(COUNT):
        # A destination's target stream must exist, as in AWS.
        kinesis.create_stream(StreamName=f"s{i}", ShardCount=1)
        logs.put_destination(destinationName=f"destination-{i:03d}",
                             targetArn=f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/s{i}",
                             roleArn=f"arn:aws:iam::{ACCOUNT}:role/CWLtoKinesisRole")
    seen = [d["destinationName"]
            for page in logs.get_paginator("describe_destinations").paginate()
            for d in page["destinations"]]
    print(len(set(seen)))


def check(path):
    with open(path, "rb") as f:
        raw = f.read()
    doc = json.loads(raw)
    print(len(doc.get("destinations", [])), "yes" if doc.get("nextToken") else "no", len(raw))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"sign": sign, "seed": seed, "check": check}[command](*args)
