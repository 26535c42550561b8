-- CloudTrail Lake: one row per event accepted into an event data store, the event's fields as
-- columns (JSON text for nested parts) and the raw eventData kept, so that queries are SQL.
CREATE TABLE cloudtrail_events (
    account                    TEXT NOT NULL,
    region                     TEXT NOT NULL,
    event_data_store           TEXT NOT NULL,
    event_id                   TEXT NOT NULL,
    event_version              TEXT,
    event_category             TEXT,
    event_type                 TEXT,
    event_time                 TEXT,
    event_source               TEXT,
    event_name                 TEXT,
    data_version               TEXT,
    user_identity_type         TEXT,
    user_identity_principal_id TEXT,
    user_identity              TEXT,
    user_agent                 TEXT,
    source_ip_address          TEXT,
    recipient_account_id       TEXT,
    uid                        TEXT,
    error_code                 TEXT,
    error_message              TEXT,
    request_parameters         TEXT,
    response_elements          TEXT,
    additional_event_data      TEXT,
    aws_region                 TEXT,
    channel_arn                TEXT,
    ingestion_time             TEXT,
    raw_event_data             TEXT NOT NULL,
    UNIQUE (account, region, event_data_store, event_id)
);
CREATE INDEX cloudtrail_events_by_time ON cloudtrail_events (account, region, event_data_store, event_time);
