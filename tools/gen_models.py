#!/usr/bin/env python3
"""Regenerate models/*.json from the botocore service models.

The botocore model of each service is Sluice's contract: shapes, constraints, enums, error
shapes and HTTP bindings. Sluice embeds a stripped copy (no documentation prose, no examples)
so that the wire layer can route, bind and validate every operation from the same facts the
clients use. Run after upgrading botocore:

    pip install botocore && python3 tools/gen_models.py

CI does not run this; the output is committed and reviewed like code.
"""
import glob
import gzip
import json
import os

import botocore

SERVICES = ["logs", "appfabric", "kinesis", "cloudtrail", "cloudtrail-data", "firehose"]  # grows as services land; the file name is the SigV4 signing name
KEEP_SHAPE_KEYS = {
    "type", "members", "required", "member", "key", "value", "min", "max", "pattern", "enum",
    "exception", "error", "fault", "union", "timestampFormat", "location", "locationName",
    "payload", "idempotencyToken", "jsonvalue", "document", "box", "deprecated", "sensitive",
    "shape", "event", "eventstream", "streaming", "hostLabel",
}
KEEP_OP_KEYS = {"name", "http", "input", "output", "errors", "idempotent", "deprecated"}


def strip_shape(shape):
    kept = {k: v for k, v in shape.items() if k in KEEP_SHAPE_KEYS}
    if "members" in kept:
        kept["members"] = {
            name: {k: v for k, v in member.items() if k in KEEP_SHAPE_KEYS}
            for name, member in kept["members"].items()
        }
    for key in ("member", "key", "value"):
        if key in kept:
            kept[key] = {k: v for k, v in kept[key].items() if k in KEEP_SHAPE_KEYS}
    return kept


def main():
    root = os.path.join(os.path.dirname(botocore.__file__), "data")
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models")
    for service in SERVICES:
        (path,) = glob.glob(os.path.join(root, service, "*", "service-2.json.gz"))
        model = json.load(gzip.open(path))
        stripped = {
            "_generated": f"by tools/gen_models.py from botocore {botocore.__version__}; do not edit",
            "metadata": {k: v for k, v in model["metadata"].items() if k != "documentation"},
            "operations": {
                n: {k: v for k, v in o.items() if k in KEEP_OP_KEYS}
                for n, o in model["operations"].items()
            },
            "shapes": {n: strip_shape(s) for n, s in model["shapes"].items()},
        }
        with open(os.path.join(out_dir, f"{service}.json"), "w") as f:
            json.dump(stripped, f, indent=1, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
