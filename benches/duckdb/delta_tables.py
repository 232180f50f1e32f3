"""Register the live files of bianzhi's Delta tables as DuckDB views.

A Delta table's current files are the `add` actions of its log minus the
`remove` actions; reading them with read_parquet gives DuckDB the same rows
bianzhi sees (no deletion vectors or column mapping are used by bianzhi).
"""

import json
import os


def live_files(table_dir):
    log_dir = os.path.join(table_dir, "_delta_log")
    live = {}
    for name in sorted(os.listdir(log_dir)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(log_dir, name), encoding="utf-8") as log:
            for line in log:
                action = json.loads(line)
                if "add" in action:
                    live[action["add"]["path"]] = True
                elif "remove" in action:
                    live.pop(action["remove"]["path"], None)
    return [os.path.join(table_dir, path) for path in live]


def register(connection, data_dir, tables):
    for table in tables:
        files = live_files(os.path.join(data_dir, table))
        if not files:
            raise SystemExit(f"{table}: no live files in {data_dir}")
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        connection.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{listed}])")
