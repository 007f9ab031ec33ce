"""Connecting to PostgreSQL through ADBC, and turning driver errors into churnlens's errors.

Reads and writes go through the ADBC PostgreSQL driver (``adbc-driver-postgresql``): result sets
arrive as Arrow (the driver reads ``COPY ... TO STDOUT (FORMAT binary)`` in C), and uploads are
binary ``COPY ... FROM STDIN``. It was chosen over psycopg's binary COPY by
``benchmarks/warehouse.py`` (see ``benchmarks/RESULTS.md``). libpq does the connecting, so the
password comes from the URI, ``PGPASSWORD``, ``~/.pgpass`` (``PGPASSFILE``) or a service file.

Errors: what the user can fix (authentication, an unknown database, role, table or column, a bad
query in ``[warehouse.tables]``) is an :class:`~churnlens.errors.InputError` (exit status 2); a
server that cannot be reached or fails is a :class:`WarehouseUnavailableError` (exit status 1).
Every message is scrubbed of the password.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from churnlens.errors import InputError
from churnlens.warehouse.uri import WarehouseURI, quote_identifier

#: SQLSTATE classes that mean the user's input is at fault: 28 authentication, 3D no such
#: database, 3F no such schema, 42 syntax error or access rule violation (unknown table,
#: column, permission), 22 data exception (a value the server cannot convert).
USER_SQLSTATE_CLASSES = ("28", "3D", "3F", "42", "22")
#: Connection failures caused by what the URI says (not by the server being down).
_USER_CONNECT_ERRORS = (
    "password authentication failed",
    "no password supplied",
    "does not exist",
    "authentication failed",
    "invalid connection option",
    "invalid uri",
    "invalid integer value",
    "pg_hba.conf",
    "definition of service",
    "service file",
)


class WarehouseUnavailableError(ConnectionError):
    """The database server could not be reached or failed (not the user's input): exit status 1."""


def _driver() -> Any:
    try:
        import adbc_driver_postgresql.dbapi as dbapi
    except ImportError:  # pragma: no cover - the extra is part of the dev install
        raise InputError(
            "reading or writing PostgreSQL needs the ADBC driver: pip install 'churnlens[warehouse]'"
        ) from None
    return dbapi


def driver_message(exc: BaseException, uri: WarehouseURI) -> str:
    """A driver exception's message on one line, without the password."""
    return " ".join(uri.scrub(exc).split())


def is_user_error(exc: BaseException, uri: WarehouseURI) -> bool:
    """True when the driver exception is the user's to fix (see :data:`USER_SQLSTATE_CLASSES`)."""
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate:
        return str(sqlstate)[:2] in USER_SQLSTATE_CLASSES
    message = driver_message(exc, uri).lower()
    return any(s in message for s in _USER_CONNECT_ERRORS)


def driver_error(exc: BaseException, uri: WarehouseURI, doing: str) -> Exception:
    """The churnlens error for a driver exception ``exc`` raised while ``doing`` something."""
    text = f"{doing} ({uri.shown}): {driver_message(exc, uri)}"
    return InputError(text) if is_user_error(exc, uri) else WarehouseUnavailableError(text)


@contextmanager
def connect(uri: WarehouseURI) -> Iterator[Any]:
    """An ADBC connection to ``uri`` (a DB-API connection, autocommit off), closed on exit.

    ``search_path`` is set to the URI's schema (then ``public``) so that unqualified names in a
    mapped query resolve there.

    Raises
    ------
    InputError
        Bad credentials, an unknown database or role, a malformed URI.
    WarehouseUnavailableError
        The server cannot be reached.
    """
    dbapi = _driver()
    import adbc_driver_manager

    try:
        conn = dbapi.connect(uri.conninfo)
    except adbc_driver_manager.Error as exc:
        raise driver_error(exc, uri, "cannot connect to PostgreSQL") from None
    try:
        if uri.schema is not None:
            with conn.cursor() as cur:
                cur.execute(f"SET search_path TO {quote_identifier(uri.schema)}, public")
        yield conn
    finally:
        try:
            conn.close()
        except adbc_driver_manager.Error:  # a broken connection cannot be closed cleanly; nothing to keep
            pass


def errors() -> tuple[type[BaseException], ...]:
    """The driver's exception classes, for ``except`` clauses."""
    import adbc_driver_manager

    return (adbc_driver_manager.Error,)
