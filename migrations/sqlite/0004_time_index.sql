-- Reads by time and retention without scanning whole logs or tables.
--
-- Each log entry gets the event-time span of what it holds: for a batch of CloudWatch Logs
-- events, the first and last event's timestamps (events inside a batch are chronological);
-- for everything else (Kinesis records, the outbox), the time it was accepted.
ALTER TABLE log_entries ADD COLUMN first_time INTEGER NOT NULL DEFAULT 0;
ALTER TABLE log_entries ADD COLUMN last_time INTEGER NOT NULL DEFAULT 0;
UPDATE log_entries SET first_time = at_millis, last_time = at_millis;
UPDATE log_entries
   SET first_time = COALESCE(json_extract(meta, '$.events[0][0]'), at_millis),
       last_time = COALESCE(json_extract(meta, '$.events[#-1][0]'), at_millis)
 WHERE kind = 'logs/events' AND json_valid(meta);
CREATE INDEX log_entries_by_first_time ON log_entries (kind, account, region, log, first_time, sequence, last_time);
CREATE INDEX log_entries_by_last_time ON log_entries (kind, account, region, log, last_time, sequence, first_time);

-- CloudTrail Lake retention is decided by eventTime (AWS: "CloudTrail will remove events when
-- the eventTime is older than" the retention period), kept here as epoch milliseconds so
-- that expiry is an index range, whatever offset or precision the text form used.
ALTER TABLE cloudtrail_events ADD COLUMN event_time_millis INTEGER;
UPDATE cloudtrail_events
   SET event_time_millis = CAST((julianday(event_time) - 2440587.5) * 86400000 AS INTEGER)
 WHERE event_time IS NOT NULL;
CREATE INDEX cloudtrail_events_by_time_millis
    ON cloudtrail_events (account, region, event_data_store, event_time_millis);
