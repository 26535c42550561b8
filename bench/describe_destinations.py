"""Helpers for bench/describe_destinations.sh.

  seed ENDPOINT            create 100 destinations in account 111111111111
  request ENDPOINT FILE    write one signed DescribeDestinations request as a wrk Lua script
"""
import json
import sys

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

ACCOUNT = "111111111111"


def seed(endpoint):
    logs = boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ACCOUNT,
                        aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}))
    for i in range(100):
        logs.put_destination(destinationName=f"destination-{i:03d}",
                             targetArn=f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/s{i}",
                             roleArn=f"arn:aws:iam::{ACCOUNT}:role/CWLtoKinesisRole")
    # The replayed request asks for one page of 50; report how many the server really returns
    # (moto ignores `limit` and returns all 100).
    print(len(logs.describe_destinations(limit=50)["destinations"]))


def request(endpoint, path):
    body = json.dumps({"limit": 50})
    req = AWSRequest(method="POST", url=endpoint + "/", data=body,
                     headers={"X-Amz-Target": "Logs_20140328.DescribeDestinations",
                              "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(ACCOUNT, "x"), "logs", "us-east-1").add_auth(req)
    headers = "\n".join(f'wrk.headers["{k}"] = {json.dumps(v)}' for k, v in req.headers.items())
    with open(path, "w") as f:
        f.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n{headers}\n')


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"seed": seed, "request": request}[command](*args)
