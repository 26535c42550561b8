"""What the query engine alone costs for the Lake benchmark's GROUP BY, outside Sluice.

Reads one of Sluice's Lake segment files (a merged one from `bench/lake.sh`'s data directory,
`<data>/lake/<store>/*.parquet`) with DataFusion's Python bindings, the same engine version
Sluice embeds, on two partitions as Sluice runs it, and times the benchmark's GROUP BY over:

- the segment as written;
- copies with `eventName` and `eventSource` stored as Arrow dictionaries (read back as
  `Dictionary(Int32, Utf8)`), with Sluice's row groups (16 Ki rows) and with larger ones;
- `eventName` alone as a flat column, grouped, and only scanned and filtered.

    python -m venv /tmp/v && /tmp/v/bin/pip install datafusion==55.* pyarrow
    /tmp/v/bin/python bench/lake_engine.py <segment.parquet> [scratch dir]

Each figure is the median of 10 runs after 2 warm-up runs, in one process."""
import statistics
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
from datafusion import SessionConfig, SessionContext

GROUP_BY = "SELECT eventdata['eventname'] AS n, count(*) AS c FROM t GROUP BY 1 ORDER BY 2 DESC"


def timed(path, query):
    ctx = SessionContext(SessionConfig().with_target_partitions(2))
    ctx.register_parquet("t", path)
    runs = []
    for _ in range(12):
        started = time.perf_counter()
        ctx.sql(query).collect()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs[2:])


def main(segment, scratch):
    table = pq.read_table(segment)
    data = table.column("eventdata").combine_chunks()
    fields, arrays = [], []
    for index, field in enumerate(data.type):
        array = data.field(index)
        if field.name in ("eventname", "eventsource"):
            array = array.dictionary_encode()
            field = pa.field(field.name, array.type)
        fields.append(field)
        arrays.append(array)
    encoded = pa.StructArray.from_arrays(arrays, fields=fields, mask=data.is_null())
    dictionary = table.set_column(table.schema.get_field_index("eventdata"), "eventdata", encoded)
    flat = pa.table({"eventname": data.field("eventname")})
    files = {}
    for rows in (16384, 131072):
        files[f"as Sluice writes it, {rows}-row groups"] = f"{scratch}/plain{rows}.parquet"
        pq.write_table(table, files[f"as Sluice writes it, {rows}-row groups"], row_group_size=rows)
        files[f"dictionaries, {rows}-row groups"] = f"{scratch}/dict{rows}.parquet"
        pq.write_table(dictionary, files[f"dictionaries, {rows}-row groups"], row_group_size=rows)
    pq.write_table(flat, f"{scratch}/flat.parquet", row_group_size=16384)
    print(f"{table.num_rows} events; GROUP BY, median ms:")
    print(f"  the segment itself: {timed(segment, GROUP_BY):.1f}")
    for label, path in files.items():
        print(f"  {label}: {timed(path, GROUP_BY):.1f}")
    flat_path = f"{scratch}/flat.parquet"
    grouped = timed(flat_path, "SELECT eventname, count(*) FROM t GROUP BY 1 ORDER BY 2 DESC")
    scanned = timed(flat_path, "SELECT count(*) FROM t WHERE eventname <> 'x'")
    print(f"  eventName alone, flat, grouped: {grouped:.1f}")
    print(f"  eventName alone, flat, only scanned and filtered: {scanned:.1f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "/tmp")
