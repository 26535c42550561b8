"""Helpers for bench/read_path.sh (run with the bench venv's python).

  cold ENDPOINT DIR     write one SigV4-signed DescribeDestinations request (body {}), signed
                        without a server, as DIR/cold/{request.lua,headers,body,method,url}
  seed ENDPOINT DIR     store what the five operations read (100 destinations, 100 log groups,
                        100 log events, 5 ingestion destinations, 1 channel) in account
                        111111111111, us-east-1, check it through boto3 (paginators included),
                        and write each operation's request exactly as boto3 signed and sent it
                        to DIR/<operation>/{request.lua,headers,body,method,url}
  check OPERATION FILE  read a response body; print "<items in it> <has a next token> <bytes>"

Requests are captured from boto3 itself (the `before-send` event), so each replayed request is
byte for byte what the real client sends, in whichever protocol the service speaks.
"""
import json
import os
import sys
import time
from urllib.parse import urlsplit

import boto3
from botocore import xform_name
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

ACCOUNT = "111111111111"
REGION = "us-east-1"
COUNT = 100
OPERATIONS = ["DescribeDestinations", "GetLogEvents", "DescribeLogGroups",
              "ListIngestionDestinations", "GetChannel"]


def client(service, endpoint):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=ACCOUNT, aws_secret_access_key="not-checked",
                        config=Config(retries={"max_attempts": 1}))


def write_request(out, method, url, headers, body):
    os.makedirs(out, exist_ok=True)
    if isinstance(body, str):
        body = body.encode()
    body = body or b""
    parts = urlsplit(url)
    path = parts.path + (("?" + parts.query) if parts.query else "")
    # Host and Content-Length are set by wrk and curl from the URL and the body.
    headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in headers.items()
               if k.lower() not in ("host", "content-length")}
    with open(f"{out}/request.lua", "w") as f:
        f.write(f"wrk.method = {json.dumps(method)}\n")
        f.write(f"wrk.path = {json.dumps(path)}\n")
        f.write(f"wrk.body = {json.dumps(body.decode())}\n")
        for k, v in headers.items():
            f.write(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n")
    with open(f"{out}/headers", "w") as f:
        f.write("".join(f"{k}: {v}\n" for k, v in headers.items()))
    with open(f"{out}/body", "wb") as f:
        f.write(body)
    with open(f"{out}/method", "w") as f:
        f.write(method)
    with open(f"{out}/path", "w") as f:
        f.write(path)


def cold(endpoint, out):
    body = "{}"
    req = AWSRequest(method="POST", url=endpoint + "/", data=body,
                     headers={"X-Amz-Target": "Logs_20140328.DescribeDestinations",
                              "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(ACCOUNT, "not-checked"), "logs", REGION).add_auth(req)
    write_request(f"{out}/cold", "POST", endpoint + "/", dict(req.headers.items()), body)


def capture(boto_client, out, operation, **params):
    """Calls the operation through boto3 and keeps the request it sent."""
    seen = {}

    def keep(request, **_):
        seen["request"] = (request.method, request.url, dict(request.headers.items()),
                           request.body)

    event = f"before-send.{boto_client.meta.service_model.endpoint_prefix}.{operation}"
    boto_client.meta.events.register(event, keep)
    method = getattr(boto_client, xform_name(operation))
    response = method(**params)
    boto_client.meta.events.unregister(event, keep)
    write_request(f"{out}/{operation}", *seen["request"])
    return response


def seed_destinations(endpoint):
    """COUNT Logs destinations, each with its Kinesis stream; returns the Logs client."""
    logs, kinesis = client("logs", endpoint), client("kinesis", endpoint)
    for i in range(COUNT):
        # A destination's target stream must exist, as in AWS.
        kinesis.create_stream(StreamName=f"s{i}", ShardCount=1)
        logs.put_destination(destinationName=f"destination-{i:03d}",
                             targetArn=f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/s{i}",
                             roleArn=f"arn:aws:iam::{ACCOUNT}:role/CWLtoKinesisRole")
    return logs


def seed(endpoint, out):
    logs = seed_destinations(endpoint)
    for i in range(COUNT):
        logs.create_log_group(logGroupName=f"/bench/group-{i:03d}")
    logs.create_log_stream(logGroupName="/bench/group-000", logStreamName="stream")
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName="/bench/group-000", logStreamName="stream",
                        logEvents=[{"timestamp": now - COUNT + i,
                                    "message": f"event {i:03d} of the read-path benchmark"}
                                   for i in range(COUNT)])

    appfabric = client("appfabric", endpoint)
    bundle = appfabric.create_app_bundle()["appBundle"]["arn"]
    ingestion = appfabric.create_ingestion(appBundleIdentifier=bundle, app="OKTA",
                                           tenantId="bench.okta.example",
                                           ingestionType="auditLog")["ingestion"]["arn"]
    for i in range(5):  # the quota: 5 destinations per ingestion
        appfabric.create_ingestion_destination(
            appBundleIdentifier=bundle, ingestionIdentifier=ingestion,
            processingConfiguration={"auditLog": {"schema": "ocsf", "format": "json"}},
            destinationConfiguration={"auditLog": {"destination": {
                "s3Bucket": {"bucketName": f"bench-audit-{i}", "prefix": "audit/"}}}})

    cloudtrail = client("cloudtrail", endpoint)
    store = cloudtrail.create_event_data_store(
        Name="bench", TerminationProtectionEnabled=False,
        AdvancedEventSelectors=[{"FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["ActivityAuditLog"]}]}])["EventDataStoreArn"]
    channel = cloudtrail.create_channel(
        Name="bench", Source="Custom",
        Destinations=[{"Type": "EVENT_DATA_STORE", "Location": store}])["ChannelArn"]

    # The checks, then the five requests as boto3 sends them.
    destinations = [d["destinationName"]
                    for page in logs.get_paginator("describe_destinations").paginate()
                    for d in page["destinations"]]
    groups = [g["logGroupName"]
              for page in logs.get_paginator("describe_log_groups").paginate()
              for g in page["logGroups"]]
    assert len(set(destinations)) == COUNT, len(set(destinations))
    assert len(set(groups)) == COUNT, len(set(groups))
    capture(logs, out, "DescribeDestinations")
    capture(logs, out, "DescribeLogGroups")
    got = capture(logs, out, "GetLogEvents", logGroupName="/bench/group-000",
                  logStreamName="stream", startFromHead=True, limit=50)
    assert len(got["events"]) == 50, len(got["events"])
    got = capture(appfabric, out, "ListIngestionDestinations", appBundleIdentifier=bundle,
                  ingestionIdentifier=ingestion)
    assert len(got["ingestionDestinations"]) == 5, got
    got = capture(cloudtrail, out, "GetChannel", Channel=channel)
    assert got["Name"] == "bench", got
    print(" ".join(OPERATIONS))


def check(operation, path):
    with open(path, "rb") as f:
        raw = f.read()
    doc = json.loads(raw)
    items = {"DescribeDestinations": "destinations", "DescribeLogGroups": "logGroups",
             "GetLogEvents": "events", "ListIngestionDestinations": "ingestionDestinations",
             "GetChannel": "Destinations"}[operation]
    token = any(doc.get(k) for k in ("nextToken", "NextToken", "nextForwardToken")
                if operation != "GetLogEvents")
    print(len(doc.get(items, [])), "yes" if token else "no", len(raw))


def coldstart(binary, port, requests, runs, scratch):
    """Spawns `sluice serve` with a fresh data directory `runs` times in each of two ways, and
    prints, per run, the way, the milliseconds from the spawn to the first HTTP 200 for the
    signed request in `requests`, and the RSS then:

    - `line`: waits (blocked, using no CPU) for the "listening" line on stdout, as the tests
      and scripts do, then sends the request;
    - `poll`: sends the request at once, and again every 0.2 ms while the port refuses. The
      polling takes most of a core, which on a 2-core machine slows the server it waits for.

    The loop runs here rather than in the shell, so that no process start (curl's, say) sits
    inside the measured interval."""
    import shutil
    import socket
    import subprocess

    port, runs = int(port), int(runs)
    method = open(f"{requests}/method").read()
    path = open(f"{requests}/path").read()
    body = open(f"{requests}/body", "rb").read()
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n"
    head += open(f"{requests}/headers").read().replace("\n", "\r\n") + "\r\n"
    request = head.encode() + body

    def answered():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(request)
                answer = b""
                while b"\r\n" not in answer:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    answer += chunk
            return answer.startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    for run in range(runs):
        for way in ("line", "poll"):
            data = f"{scratch}/cold-{run}"
            shutil.rmtree(data, ignore_errors=True)
            started = time.monotonic()
            server = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}",
                                       "--data-dir", data],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            try:
                if way == "line" and not server.stdout.readline():
                    raise SystemExit(f"sluice exited with {server.wait()}")
                while not answered():
                    if time.monotonic() - started > 30:
                        raise SystemExit("no 200 within 30 s")
                    if server.poll() is not None:
                        raise SystemExit(f"sluice exited with {server.returncode}")
                    time.sleep(0.0002)
                elapsed = (time.monotonic() - started) * 1000
                rss = [line.split()[1] for line in open(f"/proc/{server.pid}/status")
                       if line.startswith("VmRSS")][0]
                print(f"{way} {elapsed:.1f} {int(rss) / 1024:.1f}")
            finally:
                server.terminate()
                server.wait()
                shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"cold": cold, "seed": seed, "check": check, "coldstart": coldstart}[command](*args)
