"""CloudTrail Lake through boto3: event data stores, channels (seed 004), resource policies,
and cloudtrail-data PutAuditEvents from the owner and from a granted partner account."""
import base64
import hashlib
import json

import pytest
from botocore.exceptions import ClientError

from conftest import REGION, client, new_account

SELECTORS = [{"Name": "activity", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["ActivityAuditLog"]}]}]


def code_of(call, **kwargs):
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"]


def event(account, uid):
    return json.dumps({
        "version": "1.0", "userIdentity": {"type": "CustomUser", "principalId": "alice"}, "eventSource": "my-app",
        "eventName": "Login", "eventTime": "2026-01-31T12:00:00Z", "UID": uid, "recipientAccountId": account,
    })


def test_store_channel_and_audit_events(endpoint):
    owner, partner, stranger = new_account(), new_account(), new_account()
    cloudtrail = client(endpoint, owner, "cloudtrail")
    store = cloudtrail.create_event_data_store(Name="audit", AdvancedEventSelectors=SELECTORS, RetentionPeriod=30,
                                               TerminationProtectionEnabled=False)
    assert store["EventDataStoreArn"].startswith(f"arn:aws:cloudtrail:{REGION}:{owner}:eventdatastore/")
    assert store["Status"] == "ENABLED" and store["RetentionPeriod"] == 30
    assert code_of(cloudtrail.create_event_data_store, Name="audit", AdvancedEventSelectors=SELECTORS) == \
        "EventDataStoreAlreadyExistsException"
    unchecked = client(endpoint, owner, "cloudtrail", validate=False)
    assert code_of(unchecked.create_event_data_store, Name="short", RetentionPeriod=6) == "InvalidParameterException"

    channel = cloudtrail.create_channel(Name="partner-feed", Source="Custom",
                                        Destinations=[{"Type": "EVENT_DATA_STORE", "Location": store["EventDataStoreArn"]}])
    channel_arn = channel["ChannelArn"]
    assert channel_arn.startswith(f"arn:aws:cloudtrail:{REGION}:{owner}:channel/")
    assert cloudtrail.get_channel(Channel=channel_arn)["Name"] == "partner-feed"
    assert code_of(cloudtrail.create_channel, Name="partner-feed", Source="Custom",
                   Destinations=[{"Type": "EVENT_DATA_STORE", "Location": store["EventDataStoreArn"]}]) == \
        "ChannelAlreadyExistsException"
    assert code_of(cloudtrail.create_channel, Name="bad-source", Source="NotAPartner",
                   Destinations=[{"Type": "EVENT_DATA_STORE", "Location": store["EventDataStoreArn"]}]) == \
        "InvalidSourceException"
    cloudtrail.put_resource_policy(ResourceArn=channel_arn, ResourcePolicy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "partner", "Effect": "Allow", "Principal": {"AWS": partner},
                       "Action": "cloudtrail-data:PutAuditEvents", "Resource": channel_arn,
                       "Condition": {"StringEquals": {"cloudtrail:ExternalId": "ext-1"}}}]}))

    data = client(endpoint, owner, "cloudtrail-data")
    body = event(owner, "u-1")
    checksum = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    result = data.put_audit_events(channelArn=channel_arn, auditEvents=[
        {"id": "e1", "eventData": body, "eventDataChecksum": checksum},
        {"id": "e2", "eventData": body, "eventDataChecksum": "bm90IHRoZSBjaGVja3N1bQ=="},
        {"id": "e3", "eventData": "{\"version\": \"1.0\"}"},
    ])
    assert [s["id"] for s in result["successful"]] == ["e1"]
    assert {f["id"]: f["errorCode"] for f in result["failed"]} == {"e2": "InvalidChecksum", "e3": "FieldNotFound"}

    granted = client(endpoint, partner, "cloudtrail-data")
    ok = granted.put_audit_events(channelArn=channel_arn, externalId="ext-1",
                                  auditEvents=[{"id": "p1", "eventData": event(owner, "u-2")}])
    assert [s["id"] for s in ok["successful"]] == ["p1"]
    assert code_of(granted.put_audit_events, channelArn=channel_arn, externalId="wrong",
                   auditEvents=[{"id": "p2", "eventData": event(owner, "u-3")}]) == "ChannelInsufficientPermission"
    refused = client(endpoint, stranger, "cloudtrail-data")
    assert code_of(refused.put_audit_events, channelArn=channel_arn, externalId="ext-1",
                   auditEvents=[{"id": "s1", "eventData": event(owner, "u-4")}]) == "ChannelInsufficientPermission"

    assert code_of(cloudtrail.delete_event_data_store, EventDataStore=store["EventDataStoreArn"]) == \
        "ChannelExistsForEDSException"
    cloudtrail.delete_channel(Channel=channel_arn)
    assert code_of(cloudtrail.get_channel, Channel=channel_arn) == "ChannelNotFoundException"
