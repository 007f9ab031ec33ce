"""A throw-away PostgreSQL server for tests and benchmarks (Debian's ``postgresql`` binaries).

``initdb`` in a temporary folder, ``pg_ctl`` on a free port on 127.0.0.1 (and a socket in that
folder), password authentication (scram-sha-256) for every connection, a superuser and a
password-protected role owning a database. The cluster is stopped and its folder removed at the
end; a watchdog stops it after ``lifetime_s`` whatever happens to the process that started it.

Hand-written rather than pytest-postgresql: CI runs as root, and initdb refuses root, so the
server runs as the ``postgres`` system user that Debian's package creates.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

START_TIMEOUT_S = 60
LIFETIME_S = 1800
ADMIN = "admin"


def postgres_bindir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: the newest ``/usr/lib/postgresql/<v>/bin``, else on PATH."""
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
                    if p.parent.parent.name.isdigit() else 0)  # fmt: skip
    if debian:
        return debian[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> str | None:
    """Who runs the server: ourselves, or ``postgres`` when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise RuntimeError("running as root needs the postgres system user (apt-get install postgresql)") from exc
    return "postgres"


@dataclass
class Cluster:
    """A running throw-away cluster; :meth:`uri` builds connection URIs for its role."""

    root: Path
    bindir: Path
    port: int
    user: str = "churn"
    password: str = field(default_factory=lambda: "pw-" + secrets.token_hex(8), repr=False)
    admin_password: str = field(default_factory=lambda: "admin-" + secrets.token_hex(8), repr=False)
    database: str = "churn"
    host: str = "127.0.0.1"
    _watchdog: subprocess.Popen | None = None
    _run_as: str | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    def uri(self, schema: str | None = None, *, password: bool = True, user: str | None = None,
            database: str | None = None, **params: str) -> str:  # fmt: skip
        """``postgresql://user[:password]@127.0.0.1:port/db?schema=...&...``."""
        name = user or self.user
        secret = self.admin_password if name == ADMIN else self.password
        auth = f"{quote(name)}:{quote(secret, safe='')}" if password else quote(name)
        query = {**({"schema": schema} if schema else {}), **params}
        tail = "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query.items()) if query else ""
        return f"postgresql://{auth}@{self.host}:{self.port}/{database or self.database}{tail}"

    def execute(self, *statements: str, database: str | None = None, as_admin: bool = True) -> list:
        """Run statements, each committed on its own; the last one's rows."""
        import adbc_driver_postgresql.dbapi as dbapi

        uri = self.uri(user=ADMIN if as_admin else None, database=database)
        rows: list = []
        with dbapi.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
                rows = cur.fetchall() if cur.description else []
        return rows

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*args], user=self._run_as, check=check, capture_output=True, text=True, timeout=120)

    def stop(self) -> None:
        """Stop the server (fast shutdown), end the watchdog and remove the folder."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "stop", "-m", "fast", "-w", check=False)
        finally:
            if self._watchdog is not None and self._watchdog.poll() is None:
                os.killpg(self._watchdog.pid, signal.SIGTERM)
                self._watchdog.wait(timeout=10)
            shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(lifetime_s: float = LIFETIME_S, **settings: str) -> Cluster:
    """Start a cluster (see the module docstring); ``settings`` are extra server settings (``work_mem="64MB"``)."""
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (initdb not found): apt-get install postgresql")
    run_as = _server_user()
    root = Path(tempfile.mkdtemp(prefix="churnlens-pg-"))
    cluster = Cluster(root=root, bindir=bindir, port=free_port())
    cluster._run_as = run_as
    try:
        if run_as is not None:
            shutil.chown(root, run_as)
        pwfile = root / "pw"
        pwfile.write_text(cluster.admin_password + "\n")
        if run_as is not None:
            shutil.chown(pwfile, run_as)
        cluster._run(str(bindir / "initdb"), "-D", str(cluster.data), "-U", ADMIN, f"--pwfile={pwfile}",
                     "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8")  # fmt: skip
        pwfile.unlink()
        options = {"listen_addresses": "127.0.0.1", "port": str(cluster.port), "unix_socket_directories": str(root),
                   "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", **settings}  # fmt: skip
        opts = " ".join(f"-c {k}={v}" for k, v in options.items())
        cluster._run(str(bindir / "pg_ctl"), "-D", str(cluster.data), "-o", opts, "-l", str(root / "server.log"),
                     "-w", "-t", str(START_TIMEOUT_S), "start")  # fmt: skip
        # the watchdog bounds the server's life even if this process dies without stopping it
        cluster._watchdog = subprocess.Popen(
            ["sh", "-c", f"sleep {int(lifetime_s)}; exec '{bindir / 'pg_ctl'}' -D '{cluster.data}' stop -m immediate"],
            user=run_as, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                cluster.execute(
                    f"CREATE ROLE {cluster.user} LOGIN PASSWORD '{cluster.password}'",
                    database="postgres",
                )
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        cluster.execute(f"CREATE DATABASE {cluster.database} OWNER {cluster.user}", database="postgres")
    except BaseException:
        log = root / "server.log"
        detail = log.read_text()[-2000:] if log.exists() else ""
        cluster.stop()
        if detail:
            raise RuntimeError(f"PostgreSQL did not start; server log:\n{detail}") from None
        raise
    return cluster
