"""PostgreSQL in and out: read the contract tables from a database, write campaign lists back.

- :func:`read_warehouse` — validated tables from ``postgresql://...?schema=S`` (what
  :func:`churnlens.data.load_tables` does when given such a URI);
- :func:`write_campaign` — a scored campaign into ``PREFIX_campaign``, ``PREFIX_reasons`` ...
  in one transaction (``churnlens score --out postgresql://...?schema=S&table=PREFIX``);
- :func:`mask_uri` — the one way a URI is shown: its password masked.

The driver (``adbc-driver-postgresql``) is the ``warehouse`` extra: ``pip install 'churnlens[warehouse]'``.
"""

from churnlens.warehouse.connection import WarehouseUnavailableError
from churnlens.warehouse.read import read_warehouse
from churnlens.warehouse.uri import WarehouseURI, is_warehouse_uri, mask_uri
from churnlens.warehouse.write import WarehouseWrite, export_tables, write_campaign

__all__ = [
    "WarehouseURI",
    "WarehouseUnavailableError",
    "WarehouseWrite",
    "export_tables",
    "is_warehouse_uri",
    "mask_uri",
    "read_warehouse",
    "write_campaign",
]
