"""Input tables: the contract, loading, validation and repair."""

from churnlens.data.bounds import InputBounds
from churnlens.data.errors import DataValidationError
from churnlens.data.io import load_tables, write_tables
from churnlens.data.report import Repair, ValidationReport
from churnlens.data.schema import KNOWN_EVENT_TYPES, TABLE_SPECS, TIER_ORDER
from churnlens.data.tables import EVENT_TABLES, TABLE_NAMES, Tables
from churnlens.data.validate import validate_tables

__all__ = [
    "DataValidationError",
    "EVENT_TABLES",
    "InputBounds",
    "KNOWN_EVENT_TYPES",
    "TABLE_NAMES",
    "TABLE_SPECS",
    "TIER_ORDER",
    "Repair",
    "Tables",
    "ValidationReport",
    "load_tables",
    "validate_tables",
    "write_tables",
]
