"""AppFabric through boto3: app bundles, ingestions, ingestion destinations (seeds 000 and 001),
app authorizations, tags, idempotency, pagination and errors, plus the wire around them."""
import datetime
import tempfile
import time
import urllib.parse

import pytest
from botocore.exceptions import ClientError

from conftest import Server, client, new_account, raw

PROCESSING = {"auditLog": {"schema": "ocsf", "format": "json"}}
UUID_A = "0f0e0d0c-0b0a-4909-8807-060504030201"


def s3(bucket, prefix=None):
    bucket_config = {"bucketName": bucket}
    if prefix:
        bucket_config["prefix"] = prefix
    return {"auditLog": {"destination": {"s3Bucket": bucket_config}}}


def firehose(stream):
    return {"auditLog": {"destination": {"firehoseStream": {"streamName": stream}}}}


def uuid_of(arn):
    return arn.rsplit("/", 1)[1]


@pytest.fixture
def af(endpoint, account):
    return client(endpoint, account, "appfabric")


@pytest.fixture
def af_unchecked(endpoint, account):
    return client(endpoint, account, "appfabric", validate=False)


def error(excinfo):
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response


def rest(endpoint, account, method, path, body=""):
    return raw(endpoint, body=body, account=account, method=method, path=path, service="appfabric",
               headers={"Content-Type": "application/json"})


def setup_ingestion(af, tenant="example.okta.com"):
    bundle = af.create_app_bundle()["appBundle"]["arn"]
    ingestion = af.create_ingestion(appBundleIdentifier=bundle, app="OKTA", tenantId=tenant,
                                    ingestionType="auditLog")["ingestion"]
    return bundle, ingestion


def test_seed_000_create_ingestion_destination(af, account):
    bundle, ingestion = setup_ingestion(af)
    assert bundle.startswith(f"arn:aws:appfabric:us-east-1:{account}:appbundle/")
    assert ingestion["arn"].startswith(bundle + "/ingestion/")
    assert ingestion["state"] == "enabled"
    created = af.create_ingestion_destination(
        appBundleIdentifier=bundle, ingestionIdentifier=ingestion["arn"],
        processingConfiguration=PROCESSING, destinationConfiguration=s3("audit-bucket", "logs/"),
        tags=[{"key": "team", "value": "sec"}])
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    destination = created["ingestionDestination"]
    assert destination["arn"].startswith(ingestion["arn"] + "/ingestiondestination/")
    assert destination["ingestionArn"] == ingestion["arn"]
    assert destination["processingConfiguration"] == PROCESSING
    assert destination["destinationConfiguration"] == s3("audit-bucket", "logs/")
    assert destination["status"] == "Active"
    assert "statusReason" not in destination
    assert isinstance(destination["createdAt"], datetime.datetime)
    assert destination["createdAt"] == destination["updatedAt"]
    got = af.get_ingestion_destination(appBundleIdentifier=uuid_of(bundle),
                                       ingestionIdentifier=uuid_of(ingestion["arn"]),
                                       ingestionDestinationIdentifier=uuid_of(destination["arn"]))
    assert got["ingestionDestination"] == destination
    assert af.list_tags_for_resource(resourceArn=destination["arn"])["tags"] == [{"key": "team", "value": "sec"}]


def test_seed_001_update_ingestion_destination(af):
    bundle, ingestion = setup_ingestion(af)
    destination = af.create_ingestion_destination(
        appBundleIdentifier=bundle, ingestionIdentifier=ingestion["arn"],
        processingConfiguration=PROCESSING, destinationConfiguration=s3("audit-bucket"))["ingestionDestination"]
    time.sleep(0.02)
    updated = af.update_ingestion_destination(
        appBundleIdentifier=bundle, ingestionIdentifier=uuid_of(ingestion["arn"]),
        ingestionDestinationIdentifier=destination["arn"],
        destinationConfiguration=firehose("audit-stream"))["ingestionDestination"]
    assert updated["arn"] == destination["arn"]
    assert updated["destinationConfiguration"] == firehose("audit-stream")
    assert updated["processingConfiguration"] == PROCESSING
    assert updated["createdAt"] == destination["createdAt"]
    assert updated["updatedAt"] > destination["updatedAt"]
    with pytest.raises(ClientError) as missing:
        af.update_ingestion_destination(appBundleIdentifier=bundle, ingestionIdentifier=ingestion["arn"],
                                        ingestionDestinationIdentifier=UUID_A,
                                        destinationConfiguration=firehose("audit-stream"))
    code, status, response = error(missing)
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert response["resourceId"] == UUID_A
    assert response["resourceType"] == "IngestionDestination"


@pytest.mark.parametrize("destination_configuration, field", [
    ({"auditLog": {"destination": {}}}, "destinationConfiguration.auditLog.destination"),
    ({"auditLog": {"destination": {"s3Bucket": {"bucketName": "bkt"}, "firehoseStream": {"streamName": "abc"}}}},
     "destinationConfiguration.auditLog.destination"),
    ({}, "destinationConfiguration"),
    ({"auditLog": {"destination": {"s3Bucket": {"bucketName": "b"}}}},
     "destinationConfiguration.auditLog.destination.s3Bucket.bucketName"),
])
def test_unions_and_lengths_are_validation_exceptions(af, af_unchecked, destination_configuration, field):
    bundle, ingestion = setup_ingestion(af)
    with pytest.raises(ClientError) as refused:
        af_unchecked.create_ingestion_destination(
            appBundleIdentifier=bundle, ingestionIdentifier=ingestion["arn"],
            processingConfiguration=PROCESSING, destinationConfiguration=destination_configuration)
    code, status, response = error(refused)
    assert (code, status) == ("ValidationException", 400)
    assert response["reason"] == "fieldValidationFailed"
    assert field in [f["name"] for f in response["fieldList"]]
    assert af.list_ingestion_destinations(appBundleIdentifier=bundle,
                                          ingestionIdentifier=ingestion["arn"])["ingestionDestinations"] == []


def test_bad_enum_and_wrong_types(af, af_unchecked, endpoint, account):
    bundle, ingestion = setup_ingestion(af)
    with pytest.raises(ClientError) as refused:
        af_unchecked.create_ingestion_destination(
            appBundleIdentifier=bundle, ingestionIdentifier=ingestion["arn"],
            processingConfiguration={"auditLog": {"schema": "xml", "format": "json"}},
            destinationConfiguration=s3("bucket"))
    _, _, response = error(refused)
    assert response["fieldList"][0]["name"] == "processingConfiguration.auditLog.schema"
    path = f"/appbundles/{uuid_of(bundle)}/ingestions/{uuid_of(ingestion['arn'])}/ingestiondestinations"
    wrong_type = rest(endpoint, account, "POST", path, '{"processingConfiguration": 7}')
    assert wrong_type.status == 400
    assert wrong_type.error_type == "ValidationException"
    assert wrong_type.json["reason"] == "cannotParse"


def test_bundle_quota_conflict_and_not_found(af, account):
    bundle, ingestion = setup_ingestion(af)
    with pytest.raises(ClientError) as quota:
        af.create_app_bundle()
    code, status, response = error(quota)
    assert (code, status) == ("ServiceQuotaExceededException", 402)
    assert response["serviceCode"] == "appfabric"
    assert response["resourceType"] == "AppBundle"
    assert response["quotaCode"]
    with pytest.raises(ClientError) as conflict:
        af.delete_app_bundle(appBundleIdentifier=bundle)
    code, status, response = error(conflict)
    assert (code, status) == ("ConflictException", 409)
    assert response["resourceId"] == bundle
    with pytest.raises(ClientError) as started:
        af.start_ingestion(appBundleIdentifier=bundle, ingestionIdentifier=ingestion["arn"])
    assert error(started)[0] == "ConflictException"
    af.stop_ingestion(appBundleIdentifier=bundle, ingestionIdentifier=ingestion["arn"])
    assert af.get_ingestion(appBundleIdentifier=bundle,
                            ingestionIdentifier=ingestion["arn"])["ingestion"]["state"] == "disabled"
    deleted = af.delete_ingestion(appBundleIdentifier=bundle, ingestionIdentifier=ingestion["arn"])
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    af.delete_app_bundle(appBundleIdentifier=uuid_of(bundle))
    with pytest.raises(ClientError) as missing:
        af.get_app_bundle(appBundleIdentifier=bundle)
    code, status, response = error(missing)
    assert (code, status, response["resourceType"]) == ("ResourceNotFoundException", 404, "AppBundle")


def test_client_token_idempotency(af):
    token = "00000000-1111-4222-8333-444444444444"
    first = af.create_app_bundle(clientToken=token)["appBundle"]
    assert af.create_app_bundle(clientToken=token)["appBundle"] == first
    with pytest.raises(ClientError) as mismatch:
        af.create_app_bundle(clientToken=token, tags=[{"key": "a", "value": "b"}])
    assert error(mismatch)[:2] == ("ConflictException", 409)
    kwargs = dict(appBundleIdentifier=first["arn"], app="OKTA", tenantId="t1", ingestionType="auditLog",
                  clientToken=token)
    one = af.create_ingestion(**kwargs)["ingestion"]
    two = af.create_ingestion(**kwargs)["ingestion"]
    assert one == two
    assert len(af.list_ingestions(appBundleIdentifier=first["arn"])["ingestions"]) == 1


def test_pagination(af):
    bundle = af.create_app_bundle()["appBundle"]["arn"]
    arns = {af.create_ingestion(appBundleIdentifier=bundle, app="OKTA", tenantId=f"t{n}",
                                ingestionType="auditLog")["ingestion"]["arn"] for n in range(5)}
    first = af.list_ingestions(appBundleIdentifier=bundle, maxResults=2)
    assert len(first["ingestions"]) == 2 and first["nextToken"]
    paginator = af.get_paginator("list_ingestions")
    seen = [i["arn"] for page in paginator.paginate(appBundleIdentifier=bundle, PaginationConfig={"PageSize": 2})
            for i in page["ingestions"]]
    assert set(seen) == arns and len(seen) == 5
    with pytest.raises(ClientError) as bad:
        af.list_ingestions(appBundleIdentifier=bundle, nextToken="forged")
    assert error(bad)[0] == "ValidationException"


def test_tags_on_percent_encoded_arns(af, endpoint, account):
    bundle, ingestion = setup_ingestion(af)
    af.tag_resource(resourceArn=ingestion["arn"], tags=[{"key": "k", "value": "v"}])
    encoded = urllib.parse.quote(ingestion["arn"], safe="")
    response = rest(endpoint, account, "GET", f"/tags/{encoded}")
    assert response.status == 200, response.text
    assert response.json["tags"] == [{"key": "k", "value": "v"}]
    af.untag_resource(resourceArn=ingestion["arn"], tagKeys=["k"])
    assert af.list_tags_for_resource(resourceArn=ingestion["arn"])["tags"] == []
    with pytest.raises(ClientError) as too_many:
        af.tag_resource(resourceArn=bundle, tags=[{"key": f"k{n}", "value": "v"} for n in range(51)])
    assert error(too_many)[0] == "ValidationException"


def test_app_authorizations_and_secrets(af, endpoint, account):
    bundle = af.create_app_bundle()["appBundle"]["arn"]
    created = af.create_app_authorization(
        appBundleIdentifier=bundle, app="DROPBOX", authType="oauth2",
        credential={"oauth2Credential": {"clientId": "id", "clientSecret": "BOTO-SECRET"}},
        tenant={"tenantIdentifier": "t", "tenantDisplayName": "T"})["appAuthorization"]
    assert created["status"] == "PendingConnect"
    assert created["appAuthorizationArn"].startswith(bundle + "/appauthorization/")
    with pytest.raises(ClientError) as no_code:
        af.connect_app_authorization(appBundleIdentifier=bundle,
                                     appAuthorizationIdentifier=created["appAuthorizationArn"])
    assert error(no_code)[0] == "ValidationException"
    summary = af.connect_app_authorization(
        appBundleIdentifier=bundle, appAuthorizationIdentifier=uuid_of(created["appAuthorizationArn"]),
        authRequest={"redirectUri": "https://example.com/cb", "code": "code"})["appAuthorizationSummary"]
    assert summary["status"] == "Connected"
    listing = rest(endpoint, account, "GET", f"/appbundles/{uuid_of(bundle)}/appauthorizations")
    assert listing.status == 200
    assert "BOTO-SECRET" not in listing.text
    updated = af.update_app_authorization(appBundleIdentifier=bundle,
                                          appAuthorizationIdentifier=created["appAuthorizationArn"],
                                          tenant={"tenantIdentifier": "t", "tenantDisplayName": "Renamed"})
    assert updated["appAuthorization"]["tenant"]["tenantDisplayName"] == "Renamed"
    assert updated["appAuthorization"]["status"] == "Connected"
    assert af.delete_app_authorization(
        appBundleIdentifier=bundle,
        appAuthorizationIdentifier=created["appAuthorizationArn"])["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_user_access_tasks_are_not_supported(af):
    bundle = af.create_app_bundle()["appBundle"]["arn"]
    with pytest.raises(ClientError) as refused:
        af.start_user_access_tasks(appBundleIdentifier=bundle, email="a@example.com")
    code, status, response = error(refused)
    assert (code, status, response["reason"]) == ("ValidationException", 400, "other")
    assert "not supported" in response["Error"]["Message"]


def test_survives_kill_9():
    account = new_account()
    with tempfile.TemporaryDirectory(prefix="sluice-appfabric-") as data_dir:
        server = Server(data_dir)
        try:
            af = client(server.endpoint, account, "appfabric")
            bundle, ingestion = setup_ingestion(af)
            destination = af.create_ingestion_destination(
                appBundleIdentifier=bundle, ingestionIdentifier=ingestion["arn"],
                processingConfiguration=PROCESSING, destinationConfiguration=s3("bkt"))["ingestionDestination"]
        finally:
            server.kill9()
        server = Server(data_dir)
        try:
            af = client(server.endpoint, account, "appfabric")
            got = af.get_ingestion_destination(appBundleIdentifier=bundle, ingestionIdentifier=ingestion["arn"],
                                               ingestionDestinationIdentifier=destination["arn"])
            assert got["ingestionDestination"] == destination
        finally:
            server.stop()
