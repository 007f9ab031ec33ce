"""Reading the contract tables from PostgreSQL: validated tables vs a plain binary COPY, and vs Parquet.

Run:  python benchmarks/warehouse.py                 (1M customers, ~64M rows)
      python benchmarks/warehouse.py --customers 100000

A throw-away PostgreSQL cluster is started (``tests/postgres_cluster.py``: Debian's server,
127.0.0.1, a temporary folder, stopped at the end). The tables of the vectorised generator of
``benchmarks/features.py`` are written both as a Parquet directory and into the database
(``export_tables``; then ``VACUUM (FREEZE, ANALYZE)`` so no reader pays for hint bits).

Measured, each in a fresh process (peak memory = its ``VmHWM``, exact):

- ``COPY reference``: ``psql -c "COPY schema.table (columns) TO STDOUT (FORMAT binary)" > /dev/null``
  for every table, the columns churnlens reads: what the server and libpq cost with no client
  work. Run once to warm the cache (not counted), then before and after the churnlens read; the
  reference is their mean;
- ``churnlens, PostgreSQL``: ``load_tables("postgresql://...?schema=...")`` — ADBC read of every
  table into validated :class:`~churnlens.data.Tables` (the target: within 2x the COPY time);
- ``churnlens, Parquet``: ``load_tables(parquet_dir)`` on the same rows (the target: the
  PostgreSQL read's peak memory within 1.2x of it);
- the two readers the issue allows, on ``purchases`` (first ``--reader-rows`` rows, no
  validation): ADBC ``fetch_arrow_table`` and psycopg's binary ``COPY`` (``copy.rows()`` with
  binary types, collected into Arrow columns) — how the reader was chosen.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

SCHEMA = "shop"
TABLES = ("purchases", "customers", "program_events", "support_interactions", "cancellations")

from scale import peak_rss_gb  # noqa: E402 - benchmarks/ is put on sys.path above

# --------------------------------------------------------------------------- children


def child_prepare(args: argparse.Namespace) -> dict:
    """Generate the tables, write them as Parquet and into the database."""
    from features import generate_tables

    from churnlens.data import write_tables
    from churnlens.warehouse import export_tables

    t0 = time.perf_counter()
    tables = generate_tables(args.customers, seed=1)
    rows = {name: len(frame) for name, frame in tables.present().items()}
    t1 = time.perf_counter()
    write_tables(tables, args.parquet)
    t2 = time.perf_counter()
    export_tables(tables, args.uri)
    t3 = time.perf_counter()
    return {"rows": rows, "generate_s": t1 - t0, "parquet_s": t2 - t1, "export_s": t3 - t2}


def child_load(args: argparse.Namespace) -> dict:
    """``load_tables`` of the database URI or of the Parquet directory."""
    from churnlens.data import load_tables

    t0 = time.perf_counter()
    tables, report = load_tables(args.source)
    seconds = time.perf_counter() - t0
    rows = sum(s.rows_in for s in report.tables.values())
    return {"seconds": seconds, "rows": rows, "peak_gb": peak_rss_gb(),
            "tables_gb": sum(int(f.memory_usage(deep=True).sum()) for f in tables.present().values()) / 1e9}


def child_readers(args: argparse.Namespace) -> dict:
    """The two readers on ``purchases``: ADBC to Arrow, and psycopg's binary COPY rows into Arrow."""
    import adbc_driver_postgresql.dbapi as dbapi
    import psycopg
    import pyarrow as pa

    columns = "customer_id, timestamp, amount, channel, category"
    select = f"SELECT {columns} FROM {SCHEMA}.purchases LIMIT {int(args.reader_rows)}"
    out = {}
    t0 = time.perf_counter()
    with dbapi.connect(args.uri) as conn, conn.cursor() as cur:
        cur.execute(select)
        table = cur.fetch_arrow_table()
    out["adbc_s"], out["rows"] = time.perf_counter() - t0, table.num_rows
    del table
    t0 = time.perf_counter()
    with psycopg.connect(args.uri) as conn, conn.cursor() as cur:
        values: list[list] = [[], [], [], [], []]
        with cur.copy(f"COPY ({select}) TO STDOUT (FORMAT binary)") as copy:
            copy.set_types(["text", "timestamp", "float8", "text", "text"])
            for row in copy.rows():
                for column, value in zip(values, row, strict=True):
                    column.append(value)
        table = pa.table(dict(zip(columns.split(", "), values, strict=True)))
    out["psycopg_s"] = time.perf_counter() - t0
    assert table.num_rows == out["rows"]
    return out


def run_child(kind: str, args: argparse.Namespace, **extra: str) -> dict:
    extra = {"uri": args.uri, **extra}
    cmd = [sys.executable, __file__, "--child", kind, "--customers", str(args.customers),
           "--reader-rows", str(args.reader_rows)]  # fmt: skip
    for key, value in extra.items():
        cmd += [f"--{key}", value]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{kind} failed ({done.returncode}): {(done.stderr or done.stdout)[-2000:]}")


# --------------------------------------------------------------------------- the reference


def copy_reference(cluster, columns: dict[str, list[str]]) -> float:
    """Seconds to ``COPY ... TO STDOUT (FORMAT binary)`` every table's read columns into /dev/null with psql."""
    env = {**os.environ, "PGPASSWORD": cluster.password}
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as null:
        for table, names in columns.items():
            quoted = ", ".join(f'"{n}"' for n in names)
            subprocess.run(
                [str(cluster.bindir / "psql"), "-X", "-q", "-h", cluster.host, "-p", str(cluster.port), "-U",
                 cluster.user, "-d", cluster.database, "-c",
                 f"COPY {SCHEMA}.{table} ({quoted}) TO STDOUT (FORMAT binary)"],
                stdout=null, env=env, check=True,
            )  # fmt: skip
    return time.perf_counter() - t0


def read_columns(cluster) -> dict[str, list[str]]:
    """The columns churnlens reads of each table (every contract column: the generator writes no other)."""
    rows = cluster.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'shop' "
        "ORDER BY table_name, ordinal_position"
    )
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    return {t: columns[t] for t in TABLES if t in columns}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--reader-rows", type=int, default=2_000_000, help="purchases rows for the reader comparison")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per child process")
    parser.add_argument("--child", choices=["prepare", "load", "readers"], help=argparse.SUPPRESS)
    parser.add_argument("--uri", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--parquet", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = {"prepare": child_prepare, "load": child_load, "readers": child_readers}[args.child](args)
        print("RESULT " + json.dumps(result), flush=True)
        return

    from postgres_cluster import start_cluster

    print(f"load average at start: {os.getloadavg()[0]:.2f}, cores: {os.cpu_count()}", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="churnlens-warehouse-bench-"))
    cluster = start_cluster(lifetime_s=3 * args.timeout, wal_level="minimal", max_wal_senders="0",
                            max_wal_size="8GB", shared_buffers="512MB")  # fmt: skip
    try:
        cluster.execute(f"CREATE SCHEMA {SCHEMA} AUTHORIZATION {cluster.user}")
        uri = cluster.uri(SCHEMA)
        args.uri = cluster.uri()
        prepared = run_child("prepare", args, parquet=str(scratch / "parquet"), uri=uri)
        cluster.execute("VACUUM (FREEZE, ANALYZE)")
        rows = sum(prepared["rows"].values())
        print(f"{args.customers:,} customers, {rows:,} rows {prepared['rows']}; generated in "
              f"{prepared['generate_s']:.0f} s, Parquet {prepared['parquet_s']:.0f} s, "
              f"into PostgreSQL {prepared['export_s']:.0f} s", flush=True)  # fmt: skip
        columns = read_columns(cluster)
        copy_reference(cluster, columns)  # warm-up: the tables in the page cache, as for every reader after it
        copy_before = copy_reference(cluster, columns)
        ours = run_child("load", args, source=uri)
        copy_after = copy_reference(cluster, columns)
        parquet = run_child("load", args, source=str(scratch / "parquet"))
        readers = run_child("readers", args)
    finally:
        cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    copy_s = (copy_before + copy_after) / 2
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    print(f"\n{'step':<46} {'wall s':>8} {'vs COPY':>8} {'peak GB':>8} {'vs Parquet':>10}")
    print(f"{'COPY reference (psql, binary, to /dev/null)':<46} {copy_s:>8.1f} {'1.00x':>8} {'':>8} {'':>10}"
          f"   (before {copy_before:.1f} s, after {copy_after:.1f} s)")  # fmt: skip
    print(f"{'churnlens, PostgreSQL -> validated tables':<46} {ours['seconds']:>8.1f} "
          f"{ours['seconds'] / copy_s:>7.2f}x {ours['peak_gb']:>8.2f} {ours['peak_gb'] / parquet['peak_gb']:>9.2f}x")
    print(f"{'churnlens, Parquet -> validated tables':<46} {parquet['seconds']:>8.1f} "
          f"{parquet['seconds'] / copy_s:>7.2f}x {parquet['peak_gb']:>8.2f} {'1.00x':>10}")  # fmt: skip
    print(f"validated tables: {ours['tables_gb']:.2f} GB (PostgreSQL), {parquet['tables_gb']:.2f} GB (Parquet); "
          f"rows read {ours['rows']:,} / {parquet['rows']:,}")  # fmt: skip
    n = readers["rows"]
    print(f"\nreaders, purchases, {n:,} rows (5 columns, no validation):")
    print(f"  ADBC fetch_arrow_table            {readers['adbc_s']:>7.2f} s  "
          f"{n / readers['adbc_s'] / 1e6:>6.2f} M rows/s")
    print(f"  psycopg binary COPY rows -> Arrow {readers['psycopg_s']:>7.2f} s  "
          f"{n / readers['psycopg_s'] / 1e6:>6.2f} M rows/s ({readers['psycopg_s'] / readers['adbc_s']:.1f}x ADBC)")


if __name__ == "__main__":
    main()
