"""Start bqemulator (PyPI, pinned in scripts/bq/requirements.txt) for the local stack.

Why a wrapper instead of the `bqemulator` console script: on start-up bqemulator 1.4.0 runs
`INSTALL spatial` in DuckDB, which downloads the extension from extensions.duckdb.org and
aborts start-up when that host is unreachable (our CI machines reach only npm, PyPI, Maven
Central and Debian). streamctl never uses GEOGRAPHY, so this wrapper only tries `LOAD spatial`
(works if the extension happens to be installed already) and otherwise logs a warning and
carries on.

Second: after every write (each insertAll call included) bqemulator 1.4.0 takes an AUTO
"time travel" snapshot, `CREATE TABLE <snapshot> AS SELECT * FROM <table>`, and keeps it
for time_travel_retention_days (7). Every insert then copies the whole table: the cost
grows with the table (measured: ~1,000 rows/s at first, ~170 rows/s past 150,000 rows, and
5.4 GB of memory), which no real BigQuery does. streamctl never queries FOR SYSTEM_TIME AS
OF, so AUTO snapshots are skipped (the change event is still published); snapshots a user
asks for explicitly still work. Everything else is the stock CLI: arguments are passed
through unchanged.
"""
import sys

from bqemulator.storage import engine as _engine


def _load_spatial_offline(self) -> None:
    try:
        self._connection.execute("LOAD spatial")
    except Exception as exc:  # noqa: BLE001 - best effort, GEOGRAPHY is unused
        _engine._log.warning("duckdb.spatial_skipped", reason="offline; GEOGRAPHY unsupported", error=str(exc))


_engine.DuckDBEngine._load_spatial = _load_spatial_offline

from bqemulator.versioning import snapshots as _snapshots  # noqa: E402

_capture = _snapshots.SnapshotManager.capture


def _capture_except_auto(self, project_id, dataset_id, table_id, *, kind="AUTO"):
    if kind == "AUTO":
        return None
    return _capture(self, project_id, dataset_id, table_id, kind=kind)


_snapshots.SnapshotManager.capture = _capture_except_auto

from bqemulator.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
