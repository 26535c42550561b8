-- The PostgreSQL store's schema: the same tables as the SQLite migrations 0001-0004 end with,
-- in one step (this backend has no older layouts to carry forward). See src/store/mod.rs for
-- the contract. Key columns use the "C" collation: the contract orders names by bytes.

CREATE TABLE records (
    kind    TEXT COLLATE "C" NOT NULL,
    account TEXT COLLATE "C" NOT NULL,
    region  TEXT COLLATE "C" NOT NULL,
    name    TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    body    TEXT   NOT NULL,
    PRIMARY KEY (kind, account, region, name)
);

CREATE TABLE settings (
    name  TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE log_entries (
    kind       TEXT COLLATE "C" NOT NULL,
    account    TEXT COLLATE "C" NOT NULL,
    region     TEXT COLLATE "C" NOT NULL,
    log        TEXT COLLATE "C" NOT NULL,
    sequence   BIGINT NOT NULL,
    at_millis  BIGINT NOT NULL,
    meta       TEXT   NOT NULL,
    data       BYTEA  NOT NULL,
    first_time BIGINT NOT NULL,
    last_time  BIGINT NOT NULL,
    PRIMARY KEY (kind, account, region, log, sequence)
);
CREATE INDEX log_entries_by_first_time ON log_entries (kind, account, region, log, first_time, sequence, last_time);
CREATE INDEX log_entries_by_last_time ON log_entries (kind, account, region, log, last_time, sequence, first_time);

-- CloudTrail Lake's recent tail. `row_id` plays SQLite's `rowid`: the row number
-- `Store::scan_rows` and `Write::DeleteRows` speak of.
CREATE TABLE cloudtrail_events (
    row_id                     BIGSERIAL PRIMARY KEY,
    account                    TEXT COLLATE "C" NOT NULL,
    region                     TEXT COLLATE "C" NOT NULL,
    event_data_store           TEXT COLLATE "C" NOT NULL,
    event_id                   TEXT COLLATE "C" NOT NULL,
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
    event_time_millis          BIGINT,
    UNIQUE (account, region, event_data_store, event_id)
);
CREATE INDEX cloudtrail_events_by_time ON cloudtrail_events (account, region, event_data_store, event_time);
CREATE INDEX cloudtrail_events_by_time_millis
    ON cloudtrail_events (account, region, event_data_store, event_time_millis, row_id);
