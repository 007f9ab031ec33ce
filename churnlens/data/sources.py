"""A command's DATA: a data directory or a PostgreSQL URI, loaded and shown one way."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnlens.errors import InputError

if TYPE_CHECKING:
    from churnlens.config import ChurnConfig


def _is_uri(data: str | Path) -> bool:
    from churnlens.warehouse.uri import is_warehouse_uri  # here: churnlens.warehouse imports churnlens.data

    return is_warehouse_uri(str(data))


def load_data(data: str | Path, cfg: ChurnConfig, **options: Any) -> tuple[Any, Any]:
    """Validated tables and their report from ``data`` with the config's column mapping, bounds and
    ``[warehouse.tables]`` (:func:`churnlens.data.load_tables`); ``options`` as for it."""
    from churnlens.data.io import load_tables

    return load_tables(
        data, columns=cfg.columns, bounds=cfg.bounds, warehouse_tables=cfg.warehouse.tables, **options
    )  # fmt: skip


def shown(data: str | Path) -> str:
    """How ``data`` is shown and recorded: a URI with its password masked, a directory made absolute."""
    from churnlens.warehouse.uri import mask_uri

    return mask_uri(data) if _is_uri(data) else str(Path(data).resolve())


def local_inputs(data: str | Path) -> list[Path]:
    """``data`` as a path that outputs must not overwrite, or nothing for a database."""
    return [] if _is_uri(data) else [Path(data)]


def data_directory(data: str | Path, why: str) -> Path:
    """``data`` as a directory, or an InputError saying ``why`` a database cannot be used here."""
    if _is_uri(data):
        from churnlens.warehouse.uri import mask_uri

        raise InputError(f"{why} reads a data directory, not the database {mask_uri(data)}")
    return Path(data)
