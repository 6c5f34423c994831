"""Start bqemulator (PyPI, pinned in scripts/bq/requirements.txt) for the local stack.

Why a wrapper instead of the `bqemulator` console script: on start-up bqemulator 1.4.0 runs
`INSTALL spatial` in DuckDB, which downloads the extension from extensions.duckdb.org and
aborts start-up when that host is unreachable (our CI machines reach only npm, PyPI, Maven
Central and Debian). streamctl never uses GEOGRAPHY, so this wrapper only tries `LOAD spatial`
(works if the extension happens to be installed already) and otherwise logs a warning and
carries on. Everything else is the stock CLI: arguments are passed through unchanged.
"""
import sys

from bqemulator.storage import engine as _engine


def _load_spatial_offline(self) -> None:
    try:
        self._connection.execute("LOAD spatial")
    except Exception as exc:  # noqa: BLE001 - best effort, GEOGRAPHY is unused
        _engine._log.warning("duckdb.spatial_skipped", reason="offline; GEOGRAPHY unsupported", error=str(exc))


_engine.DuckDBEngine._load_spatial = _load_spatial_offline

from bqemulator.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
