"""CloudTrail Lake benchmark helper (run by bench/lake.sh).

  lake.py ingest ENDPOINT ACCOUNT EVENTS CLIENTS   -> creates a store + channel, puts EVENTS
                                                      events with CLIENTS processes, 100 per
                                                      call; prints JSON (store id, events/s)
  lake.py query ENDPOINT ACCOUNT STORE             -> the two queries, StartQuery to FINISHED
  lake.py duckdb EVENTS PARQUET                    -> the same events in one Parquet file, the
                                                      same two queries in DuckDB
  lake.py duckdb-segments LAKE_DIR                 -> the two queries in DuckDB over Sluice's
                                                      segment files themselves
  lake.py busy ENDPOINT ACCOUNT STORE              -> ListChannels round trips, idle and while
                                                      heavy queries run (other requests must
                                                      not wait for a query's CPU work)
  lake.py setup ENDPOINT ACCOUNT                   -> a store + channel; prints their IDs
  lake.py append ENDPOINT ACCOUNT CHANNEL FIRST COUNT CLIENTS TOTAL
                                                   -> puts events FIRST.. FIRST+COUNT-1 (of a
                                                      TOTAL-event run) into the channel

Events are generated deterministically (event i is the same in every mode), so Sluice and
DuckDB see the same data.
"""

import json
import multiprocessing
import os
import sys
import time

import boto3
from botocore.config import Config

NAMES = ["GetObject", "PutObject", "ListBuckets", "Login", "Logout", "DeleteObject",
         "CreateUser", "UpdateUser", "Download", "Share"]
DAY = 86400
# Events span the 30 days before the bench starts (within any retention).
NOW = int(os.environ.get("LAKE_BENCH_NOW", time.time()))
START = NOW - 30 * DAY
# The selective time range: one hour, about 1/720 of the events.
RANGE_FROM = NOW - 10 * DAY
RANGE_TO = RANGE_FROM + 3600


def stamp(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def shown(epoch):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def event(i, account, total):
    # Skewed names: name k appears about twice as often as name k+1.
    k = 0
    x = (i * 2654435761) % 1024
    while k < len(NAMES) - 1 and x < 512 >> k:
        k += 1
    return {
        "version": "1.0",
        "userIdentity": {"type": "User", "principalId": f"user-{i % 1000}",
                         "details": {"alternateId": f"user-{i % 1000}@example.com"}},
        "eventSource": "app.example.com",
        "eventName": NAMES[k],
        "eventTime": stamp(START + (i * 30 * DAY) // total),
        "UID": f"uid-{i}",
        "recipientAccountId": account,
        "sourceIPAddress": f"10.0.{i % 256}.{(i // 256) % 256}",
        "requestParameters": {"object": f"key-{i % 5000}"},
    }


def client(service, endpoint, account):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=account, aws_secret_access_key="x",
                        config=Config(retries={"max_attempts": 10, "mode": "standard"}))


def put_range(args):
    endpoint, account, channel, first, last, total = args
    data = client("cloudtrail-data", endpoint, account)
    for start in range(first, last, 100):
        batch = [{"id": str(i), "eventData": json.dumps(event(i, account, total))}
                 for i in range(start, min(start + 100, last))]
        out = data.put_audit_events(channelArn=channel, auditEvents=batch)
        if out["failed"]:
            raise SystemExit(f"failed events: {out['failed'][:3]}")
    return last - first


def setup(endpoint, account):
    ct = client("cloudtrail", endpoint, account)
    arn = ct.create_event_data_store(
        Name="bench", TerminationProtectionEnabled=False,
        AdvancedEventSelectors=[{"FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["ActivityAuditLog"]}]}])["EventDataStoreArn"]
    channel = ct.create_channel(Name="bench", Source="Custom", Destinations=[
        {"Type": "EVENT_DATA_STORE", "Location": arn}])["ChannelArn"]
    return arn.rsplit("/", 1)[1], channel


def append(endpoint, account, channel, first, count, clients, total):
    """Puts events first..first+count-1 with `clients` processes; (events, seconds)."""
    share = (count + clients - 1) // clients
    share = (share + 99) // 100 * 100
    ranges = [(endpoint, account, channel, first + c * share,
               min(first + count, first + (c + 1) * share), total)
              for c in range(clients) if c * share < count]
    started = time.monotonic()
    with multiprocessing.Pool(len(ranges)) as pool:
        done = sum(pool.map(put_range, ranges))
    return done, time.monotonic() - started


def ingest(endpoint, account, total, clients):
    store, channel = setup(endpoint, account)
    done, elapsed = append(endpoint, account, channel, 0, total, clients, total)
    print(json.dumps({"store": store, "events": done,
                      "seconds": round(elapsed, 2), "events_per_second": round(done / elapsed)}))


def statements(table):
    return {
        "group_by_name": f"SELECT eventData.eventName, count(*) FROM {table} "
                         "GROUP BY 1 ORDER BY 2 DESC",
        # The same count with a WHERE that per-segment value counts cannot answer: Sluice
        # reads both columns, as DuckDB does.
        "group_by_name_where": f"SELECT eventData.eventName, count(*) FROM {table} "
                               "WHERE eventData.sourceIPAddress LIKE '10.0.1.%' "
                               "GROUP BY 1 ORDER BY 2 DESC",
        "time_range": f"SELECT eventData.UID, eventTime FROM {table} "
                      f"WHERE eventTime >= '{shown(RANGE_FROM)}' AND eventTime < '{shown(RANGE_TO)}' "
                      "ORDER BY eventTime",
    }


def query(endpoint, account, store):
    ct = client("cloudtrail", endpoint, account)
    out = {}
    for name, sql in statements(store).items():
        best = None
        for _ in range(3):
            started = time.monotonic()
            qid = ct.start_query(QueryStatement=sql)["QueryId"]
            while True:
                d = ct.describe_query(QueryId=qid)
                if d["QueryStatus"] not in ("QUEUED", "RUNNING"):
                    break
                time.sleep(0.001)
            elapsed = time.monotonic() - started
            if d["QueryStatus"] != "FINISHED":
                raise SystemExit(f"{name}: {d}")
            rows = ct.get_query_results(QueryId=qid, MaxQueryResults=1000)
            result = {"seconds": round(elapsed, 3),
                      "execution_ms": d["QueryStatistics"]["ExecutionTimeInMillis"],
                      "rows": rows["QueryStatistics"]["TotalResultsCount"],
                      "first": rows["QueryResultRows"][:1]}
            if best is None or elapsed < best["seconds"]:
                best = result
        out[name] = best
    print(json.dumps(out))


def busy(endpoint, account, store):
    """ListChannels latency idle, then while three heavy GROUP BYs (a million groups) run."""
    import statistics
    import threading
    probe = client("cloudtrail", endpoint, account)
    runner = client("cloudtrail", endpoint, account)
    heavy = f"SELECT eventData.UID, count(*) FROM {store} GROUP BY 1 ORDER BY 2 DESC LIMIT 5"

    def timed():
        started = time.perf_counter()
        probe.list_channels()
        return (time.perf_counter() - started) * 1000

    idle = [timed() for _ in range(100)]
    done = threading.Event()

    def queries():
        for _ in range(3):
            qid = runner.start_query(QueryStatement=heavy)["QueryId"]
            while runner.describe_query(QueryId=qid)["QueryStatus"] in ("QUEUED", "RUNNING"):
                time.sleep(0.05)
        done.set()

    thread = threading.Thread(target=queries)
    thread.start()
    loaded = []
    while not done.is_set():
        loaded.append(timed())
        time.sleep(0.002)
    thread.join()

    def summary(ms):
        ms = sorted(ms)
        return {"n": len(ms), "median_ms": round(statistics.median(ms), 2),
                "p90_ms": round(ms[int(len(ms) * 0.9)], 2),
                "p99_ms": round(ms[int(len(ms) * 0.99)], 2), "max_ms": round(ms[-1], 2)}
    print(json.dumps({"idle": summary(idle), "during_queries": summary(loaded)}))


def best_of_3(con, table):
    out = {}
    for name, sql in statements(table).items():
        best = None
        for _ in range(3):
            started = time.monotonic()
            rows = con.execute(sql).fetchall()
            elapsed = time.monotonic() - started
            if best is None or elapsed < best["seconds"]:
                best = {"seconds": round(elapsed, 3), "rows": len(rows), "first": str(rows[:1])}
        out[name] = best
    return out


def duck_segments(directory):
    """DuckDB over Sluice's own segment files: the layout's cost apart from the engine's."""
    import duckdb
    import glob
    files = sorted(glob.glob(os.path.join(directory, "*", "*.parquet")))
    print(json.dumps(best_of_3(duckdb.connect(), f"read_parquet({files})")))


def duck(total, path):
    import duckdb
    con = duckdb.connect()
    account = "000000000000"
    jsonl = path + ".jsonl"
    with open(jsonl, "w") as f:
        for i in range(total):
            e = event(i, account, total)
            f.write(json.dumps({"eventTime": e["eventTime"].replace("T", " ").rstrip("Z"),
                                "eventData": e}) + "\n")
    con.execute(f"""COPY (SELECT CAST(eventTime AS TIMESTAMP) AS eventTime, eventData
                    FROM read_json_auto('{jsonl}')) TO '{path}' (FORMAT parquet)""")
    print(json.dumps(best_of_3(con, f"'{path}'")))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "ingest":
        ingest(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "query":
        query(sys.argv[2], sys.argv[3], sys.argv[4])
    elif mode == "busy":
        busy(sys.argv[2], sys.argv[3], sys.argv[4])
    elif mode == "duckdb":
        duck(int(sys.argv[2]), sys.argv[3])
    elif mode == "duckdb-segments":
        duck_segments(sys.argv[2])
    elif mode == "setup":
        print(json.dumps(dict(zip(("store", "channel"), setup(sys.argv[2], sys.argv[3])))))
    elif mode == "append":
        done, elapsed = append(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]),
                               int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8]))
        print(json.dumps({"events": done, "seconds": round(elapsed, 2),
                          "events_per_second": round(done / elapsed)}))
    else:
        raise SystemExit(__doc__)
