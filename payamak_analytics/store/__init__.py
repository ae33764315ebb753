"""The local copy of an account's history: a DuckDB file, read as pandas DataFrames.

Every statement that writes the store, and every read outside the report queries of
`analytics`, lives in this package: `core` (the file, connections, transactions, schema),
`reads`, `sync_tables`, `campaign_tables`, `alert_tables`, `export`.
"""

from __future__ import annotations

from ..errors import StoreError, StoreLockedError
from .alert_tables import AlertTables
from .campaign_tables import CampaignTables
from .core import StoreFile, default_path
from .export import export_parquet
from .reads import Reads, direction_of
from .sync_tables import SyncTables


class Store(Reads, SyncTables, CampaignTables, AlertTables, StoreFile):
    """The store at `path` (default: PAYAMAK_STORE, else data/payamak.duckdb); see StoreFile."""


__all__ = [
    "Store",
    "StoreError",
    "StoreLockedError",
    "default_path",
    "direction_of",
    "export_parquet",
]
