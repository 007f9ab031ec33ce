"""PostgreSQL URIs as churnlens takes them, and the one function that hides their passwords.

``postgresql://user[:password]@host[:port]/database?schema=NAME[&table=PREFIX][&libpq options]``

- ``schema`` (reading: where the contract tables are, default ``public``; writing: where the
  output tables go) and ``table`` (writing only: the prefix of the output tables) are churnlens's
  own parameters and are removed before the URI reaches libpq;
- every other part is libpq's: ``sslmode``, ``connect_timeout``, ``service`` (a service-file
  entry) ...; without a password in the URI, libpq takes it from ``PGPASSWORD``, ``~/.pgpass``
  (or ``PGPASSFILE``) or the service file, as every PostgreSQL client does.

Wherever a URI is shown (messages, logs, summaries, MLflow), it goes through :func:`mask_uri`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from churnlens.errors import InputError

#: URI schemes libpq accepts.
SCHEMES: tuple[str, ...] = ("postgresql", "postgres")
#: What replaces a password wherever a URI is shown.
MASK = "***"
#: Default ``application_name``: how a churnlens session shows in ``pg_stat_activity``.
APPLICATION_NAME = "churnlens"

# user:password@ in any URI (the password runs to the last @ before the host, as urlsplit reads it)
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*):(?P<secret>[^/?#\s]*)@")
# password=... as a URI query parameter or a libpq keyword (quoted or not)
_KEYWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|[^&\s]*)", re.IGNORECASE)
_IDENTIFIER_MAX = 63


def mask_uri(text: Any) -> str:
    """``text`` with every password of a URI in it replaced by ``***``.

    Works on a URI (``postgresql://churn:s3cret@db/shop`` -> ``postgresql://churn:***@db/shop``)
    and on any message that holds one; ``password=...`` parameters are masked too. This is the
    one function churnlens shows URIs through: console, errors, logs, summaries and MLflow.

    Parameters
    ----------
    text : object
        A URI, a path or a message (converted with ``str``).

    Returns
    -------
    str
    """
    shown = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", str(text))
    return _KEYWORD.sub(lambda m: f"{m['head']}{MASK}", shown)


def is_warehouse_uri(value: Any) -> bool:
    """True when ``value`` is a PostgreSQL URI (``postgresql://`` or ``postgres://``), not a path."""
    return isinstance(value, str) and value.split("://", 1)[0].lower() in SCHEMES and "://" in value


def quote_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier (``"my ""odd"" name"``)."""
    return '"' + name.replace('"', '""') + '"'


def _check_identifier(value: str, what: str, shown: str) -> str:
    if not value or "\x00" in value or len(value.encode()) > _IDENTIFIER_MAX:
        raise InputError(f"{what} {value!r} in {shown} must be a non-empty name of at most 63 bytes")
    return value


@dataclass(frozen=True)
class WarehouseURI:
    """A parsed churnlens PostgreSQL URI.

    Attributes
    ----------
    conninfo : str
        The URI handed to libpq: churnlens's parameters removed, ``application_name`` added when absent.
    schema : str or None
        ``?schema=``; None when not given.
    table : str or None
        ``?table=``: the prefix of output tables; None when not given.
    shown : str
        The URI as it may be shown: its password masked.
    password : str or None
        The password given in the URI (never shown; used to scrub driver messages).
    """

    conninfo: str = field(repr=False)
    schema: str | None
    table: str | None
    shown: str
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, uri: str) -> WarehouseURI:
        """Parse ``uri``; raise an :class:`~churnlens.errors.InputError` (password masked) when it is not one.

        Raises
        ------
        InputError
            Not a ``postgresql://`` URI, a parameter given twice, or a bad schema or table name.
        """
        shown = mask_uri(uri)
        if not is_warehouse_uri(uri):
            raise InputError(f"{shown} is not a PostgreSQL URI (postgresql://user@host:port/database?schema=NAME)")
        try:
            parts = urlsplit(uri)
            pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
            password = unquote(parts.password) if parts.password is not None else None
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise InputError(f"{shown} is not a valid PostgreSQL URI: {mask_uri(exc)}") from None
        names = [k for k, _ in pairs]
        twice = sorted({k for k in names if names.count(k) > 1})
        if twice:
            raise InputError(f"{shown} gives {', '.join(twice)} more than once")
        ours = {k: v for k, v in pairs if k in ("schema", "table")}
        schema = _check_identifier(ours["schema"], "schema", shown) if "schema" in ours else None
        table = _check_identifier(ours["table"], "table", shown) if "table" in ours else None
        rest = [(k, v) for k, v in pairs if k not in ("schema", "table")]
        if "application_name" not in names:
            rest.append(("application_name", APPLICATION_NAME))
        # by hand, not urlunsplit: that drops the // of a URI without a host (postgresql://?service=x)
        conninfo = f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(rest, quote_via=quote)}"
        return cls(conninfo=conninfo, schema=schema, table=table, shown=shown, password=password)

    def scrub(self, message: Any) -> str:
        """A driver's message made safe to show: URIs masked, and the password itself removed."""
        text = mask_uri(message)
        if self.password:
            text = text.replace(self.password, MASK)
        return text.strip()
