-- Append-only logs (Kinesis shards, later log streams and outboxes): entries numbered from 1
-- within each log, in commit order. See src/store/mod.rs for the contract.
CREATE TABLE log_entries (
    kind      TEXT    NOT NULL,
    account   TEXT    NOT NULL,
    region    TEXT    NOT NULL,
    log       TEXT    NOT NULL,
    sequence  INTEGER NOT NULL,
    at_millis INTEGER NOT NULL,
    meta      TEXT    NOT NULL,
    data      BLOB    NOT NULL,
    PRIMARY KEY (kind, account, region, log, sequence)
) WITHOUT ROWID;
