"""Replays a table's change files the way a lake user would, with no Lakestream code.

Reads every file of one table folder (Parquet with pyarrow, JSON Lines, Avro with fastavro),
orders the changes by (_position, _seq), applies them (r/c/u insert or replace by key, d delete,
t clear; a column named in _unchanged keeps its previous value) and prints JSON:
{"rows": [...current rows...], "changes": N, "duplicates": N, "files": N}.

usage: replay_lake.py <table folder> <key column>[,<key column>...]
"""

import json
import os
import sys

import fastavro
import pyarrow.parquet as pq

METADATA = {"_op", "_position", "_seq", "_commit_ts", "_txid", "_unchanged"}


def read(path):
    if path.endswith(".parquet"):
        return pq.read_table(path).to_pylist()
    if path.endswith(".jsonl"):
        with open(path, encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]
    if path.endswith(".avro"):
        with open(path, "rb") as handle:
            return list(fastavro.reader(handle))
    return []


def main():
    folder, keys = sys.argv[1], sys.argv[2].split(",")
    names = sorted(n for n in os.listdir(folder) if not n.startswith(".")) if os.path.isdir(folder) else []
    changes = []
    for name in names:
        changes.extend(read(os.path.join(folder, name)))
    changes.sort(key=lambda c: (c["_position"], c["_seq"]))
    seen, duplicates = set(), 0
    for change in changes:
        mark = (change["_position"], change["_seq"])
        duplicates += mark in seen
        seen.add(mark)
    state = {}
    for change in changes:
        op = change["_op"]
        if op == "t":
            state.clear()
            continue
        key = tuple(change[k] for k in keys)
        if op == "d":
            state.pop(key, None)
            continue
        row = {k: v for k, v in change.items() if k not in METADATA}
        previous = state.get(key, {})
        for column in change.get("_unchanged") or []:
            row[column] = previous.get(column)
        state[key] = row
    rows = sorted(state.values(), key=lambda r: tuple(str(r[k]) for k in keys))
    print(json.dumps({"rows": rows, "changes": len(changes), "duplicates": duplicates, "files": len(names)}, default=str))


main()
