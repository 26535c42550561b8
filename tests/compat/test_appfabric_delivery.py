"""AppFabric audit-log delivery through boto3, against a Python stand-in for Okta's System Log
API: OCSF lines validate against the OCSF 1.1.0 schema (`ocsf-json-schema`, offline), Parquet
objects read back with pyarrow hold the same events, raw events reach a Firehose stream."""
import json
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
import pyarrow.parquet as pq
import pyarrow as pa
import pytest
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

from conftest import Server, client

API_KEY = "00py-okta-token"
TENANT = "example.okta.com"
PAGE = 4
EVENT_TYPES = ["user.session.start", "user.session.end", "user.account.update_password",
               "user.lifecycle.create", "group.user_membership.add",
               "application.user_membership.add", "policy.evaluate_sign_on"]
CLASS_NAMES = {3001: "account_change", 3002: "authentication", 3005: "user_access",
               3006: "group_management", 0: "base_event"}


def okta_event(n, event_type):
    user = {"id": f"00u{n:04d}", "type": "User", "alternateId": f"user{n}@example.com",
            "displayName": f"User {n}", "detailEntry": None}
    kind = event_type.split(".")[0]
    target = [user]
    if kind == "group":
        target.append({"id": "00g1", "type": "UserGroup", "alternateId": "unknown",
                       "displayName": "Engineering", "detailEntry": None})
    if kind == "application":
        target.append({"id": "0oa1", "type": "AppInstance", "alternateId": "Salesforce",
                       "displayName": "Salesforce.com", "detailEntry": None})
    return {
        "actor": {"id": "00uadmin", "type": "User", "alternateId": "admin@example.com",
                  "displayName": "Admin", "detailEntry": None},
        "client": {"userAgent": {"rawUserAgent": "Mozilla/5.0 (X11; Linux x86_64)", "os": "Linux",
                                 "browser": "FIREFOX"},
                   "zone": "null", "device": "Computer", "id": None, "ipAddress": "203.0.113.20",
                   "geographicalContext": {"city": "Berlin", "state": "Berlin", "country": "Germany",
                                           "postalCode": "10115",
                                           "geolocation": {"lat": 52.52, "lon": 13.405}}},
        "authenticationContext": {"authenticationStep": 0, "externalSessionId": "idxSess1"},
        "displayMessage": f"{event_type} #{n}",
        "eventType": event_type,
        "outcome": {"result": "FAILURE" if n % 5 == 4 else "SUCCESS", "reason": None},
        "published": f"2026-11-30T11:{n // 60 % 60:02d}:{n % 60:02d}.250Z",
        "securityContext": {"asNumber": None, "isProxy": False},
        "severity": "INFO",
        "debugContext": {"debugData": {"requestId": f"r{n}", "requestUri": "/idp/idx/identify"}},
        "legacyEventType": "core.user_auth.login_success",
        "transaction": {"type": "WEB", "id": f"t{n}", "detail": {}},
        "uuid": f"7c1d2e3f-1111-11ef-9000-{n:012d}",
        "version": "0",
        "request": {"ipChain": [{"ip": "203.0.113.20", "version": "V4"}]},
        "target": target,
    }


class Okta:
    """A System Log API: SSWS auth, `Link` paging, one 429 with X-Rate-Limit-Reset."""

    def __init__(self, count):
        self.events = [okta_event(n, EVENT_TYPES[n % len(EVENT_TYPES)]) for n in range(count)]
        self.requests = []
        self.rate_limited = 0
        okta = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, body, headers=()):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                query = urllib.parse.parse_qs(url.query)
                okta.requests.append(self.path)
                if url.path != "/api/v1/logs":
                    return self.reply(404, {"errorCode": "E0000007"})
                if self.headers.get("Authorization") != f"SSWS {API_KEY}":
                    return self.reply(401, {"errorCode": "E0000011",
                                            "errorSummary": "Invalid token provided"})
                after = int(query["after"][0]) if "after" in query else None
                if after is not None and okta.rate_limited == 0:
                    okta.rate_limited += 1
                    return self.reply(429, {"errorCode": "E0000047"},
                                      [("X-Rate-Limit-Reset", str(int(time.time()) + 1)),
                                       ("X-Rate-Limit-Remaining", "0")])
                limit = min(int(query.get("limit", [PAGE])[0]), PAGE)
                start = min(after or 0, len(okta.events))
                end = min(start + limit, len(okta.events))
                base = f"http://127.0.0.1:{okta.port}"
                self.reply(200, okta.events[start:end], [
                    ("Link", f'<{base}/api/v1/logs?limit={limit}>; rel="self"'),
                    ("Link", f'<{base}/api/v1/logs?after={end}&limit={limit}>; rel="next"'),
                ])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def okta():
    stand_in = Okta(11)
    yield stand_in
    stand_in.close()


@pytest.fixture
def delivery_server(okta):
    with tempfile.TemporaryDirectory(prefix="sluice-appfabric-") as data_dir:
        config = f"{data_dir}/sluice.toml"
        with open(config, "w") as f:
            f.write("[appfabric]\npoll_interval_seconds = 1\nflush_interval_seconds = 1\n"
                    f'[appfabric.app_endpoints]\nOKTA = "http://127.0.0.1:{okta.port}"\n')
        running = Server(f"{data_dir}/data", "--config", config)
        try:
            yield running
        finally:
            running.stop()


def eventually(what, check, seconds=90):
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def bodies(s3, bucket):
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return [(o["Key"], s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in listed]


def json_lines(s3, bucket):
    return [json.loads(line) for _, body in bodies(s3, bucket) for line in body.decode().splitlines()]


def parquet_rows(s3, bucket):
    rows = []
    for key, body in bodies(s3, bucket):
        table = pq.read_table(pa.BufferReader(body))
        rows.extend(table.to_pylist())
    return rows


def test_okta_to_ocsf_json_parquet_and_firehose(delivery_server, okta):
    account = "555566667777"
    endpoint = delivery_server.endpoint
    af = client(endpoint, account, "appfabric")
    s3 = client(endpoint, account, "s3")
    firehose = client(endpoint, account, "firehose")
    for bucket in ("py-ocsf-json", "py-ocsf-parquet", "py-raw"):
        s3.create_bucket(Bucket=bucket)
    firehose.create_delivery_stream(
        DeliveryStreamName="py-raw-stream",
        ExtendedS3DestinationConfiguration={
            "RoleARN": f"arn:aws:iam::{account}:role/firehose", "BucketARN": "arn:aws:s3:::py-raw",
            "BufferingHints": {"IntervalInSeconds": 1, "SizeInMBs": 1}})
    bundle = af.create_app_bundle()["appBundle"]["arn"]
    authorization = af.create_app_authorization(
        appBundleIdentifier=bundle, app="OKTA", authType="apiKey",
        credential={"apiKeyCredential": {"apiKey": API_KEY}},
        tenant={"tenantIdentifier": TENANT, "tenantDisplayName": "Example"},
    )["appAuthorization"]["appAuthorizationArn"]
    connected = af.connect_app_authorization(appBundleIdentifier=bundle,
                                             appAuthorizationIdentifier=authorization)
    assert connected["appAuthorizationSummary"]["status"] == "Connected"
    ingestion = af.create_ingestion(appBundleIdentifier=bundle, app="OKTA", tenantId=TENANT,
                                    ingestionType="auditLog")["ingestion"]["arn"]
    targets = [
        ({"schema": "ocsf", "format": "json"}, {"s3Bucket": {"bucketName": "py-ocsf-json", "prefix": "a/"}}),
        ({"schema": "ocsf", "format": "parquet"}, {"s3Bucket": {"bucketName": "py-ocsf-parquet", "prefix": "b/"}}),
        ({"schema": "raw", "format": "json"}, {"firehoseStream": {"streamName": "py-raw-stream"}}),
    ]
    for processing, destination in targets:
        af.create_ingestion_destination(
            appBundleIdentifier=bundle, ingestionIdentifier=ingestion,
            processingConfiguration={"auditLog": processing},
            destinationConfiguration={"auditLog": {"destination": destination}})
    with pytest.raises(af.exceptions.ValidationException):
        af.create_ingestion_destination(
            appBundleIdentifier=bundle, ingestionIdentifier=ingestion,
            processingConfiguration={"auditLog": {"schema": "ocsf", "format": "parquet"}},
            destinationConfiguration={"auditLog": {"destination": targets[2][1]}})

    served = {e["uuid"] for e in okta.events}
    ids = lambda events, get: sorted(get(e) for e in events)
    eventually("every event in the three destinations", lambda: (
        set(ids(json_lines(s3, "py-ocsf-json"), lambda e: e["metadata"]["uid"])) == served
        and set(ids(parquet_rows(s3, "py-ocsf-parquet"), lambda e: e["metadata"]["uid"])) == served
        and set(ids(json_lines(s3, "py-raw"), lambda e: e["uuid"])) == served))

    ocsf = json_lines(s3, "py-ocsf-json")
    rows = parquet_rows(s3, "py-ocsf-parquet")
    raw = json_lines(s3, "py-raw")
    assert ids(ocsf, lambda e: e["metadata"]["uid"]) == sorted(served)
    assert ids(rows, lambda e: e["metadata"]["uid"]) == sorted(served)
    assert ids(raw, lambda e: e["uuid"]) == sorted(served)
    assert sorted(raw, key=lambda e: e["uuid"]) == sorted(okta.events, key=lambda e: e["uuid"])
    assert okta.rate_limited == 1

    # Each OCSF line validates against the OCSF 1.1.0 schema of the class it declares.
    schema = OcsfJsonSchemaEmbedded(get_ocsf_schema("1.1.0"))
    classes = set()
    for event in ocsf:
        class_schema = schema.get_class_schema(CLASS_NAMES[event["class_uid"]])
        jsonschema.validate(event, class_schema)
        assert event["type_uid"] == event["class_uid"] * 100 + event["activity_id"]
        assert event["metadata"]["version"] == "1.1.0"
        classes.add(event["class_uid"])
    assert classes == {0, 3001, 3002, 3005, 3006}

    # The Parquet rows are the same events, with nested columns.
    by_uid = {e["metadata"]["uid"]: e for e in ocsf}
    for row in rows:
        line = by_uid[row["metadata"]["uid"]]
        assert row["class_uid"] == line["class_uid"]
        assert row["type_uid"] == line["type_uid"]
        assert row["time"] == line["time"]
        assert row["raw_data"] == line["raw_data"]
        if "user" in line:
            assert row["user"]["uid"] == line["user"]["uid"]

    keys = [key for key, _ in bodies(s3, "py-ocsf-parquet")]
    bundle_id, ingestion_id = bundle.rsplit("/", 1)[1], ingestion.rsplit("/", 1)[1]
    assert all(k.startswith(f"b/AWSAppFabric/AuditLog/OCSF/PARQUET/OKTA/{bundle_id}/{ingestion_id}/")
               for k in keys), keys


def test_a_refused_api_key_fails_validation(delivery_server, okta):
    account = "555566668888"
    af = client(delivery_server.endpoint, account, "appfabric")
    bundle = af.create_app_bundle()["appBundle"]["arn"]
    authorization = af.create_app_authorization(
        appBundleIdentifier=bundle, app="OKTA", authType="apiKey",
        credential={"apiKeyCredential": {"apiKey": "wrong"}},
        tenant={"tenantIdentifier": TENANT, "tenantDisplayName": "Example"},
    )["appAuthorization"]["appAuthorizationArn"]
    summary = af.connect_app_authorization(appBundleIdentifier=bundle,
                                           appAuthorizationIdentifier=authorization)
    assert summary["appAuthorizationSummary"]["status"] == "ConnectionValidationFailed"
