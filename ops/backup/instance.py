"""A PostgreSQL instance of our own, started from the installed programs: the recovery instance of a
point-in-time restore (and, in tests, a server with WAL archiving on).

PostgreSQL refuses to run as root: when we are root, its programs run as the `postgres` login (runuser) and the
data folder is given to it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa


def bin_dir(configured: str | None = None) -> Path:
    """The folder of initdb, pg_ctl and postgres: the configured one, else pg_config's, else the newest
    /usr/lib/postgresql/*/bin (Debian keeps them off the PATH)."""
    if configured:
        return Path(configured)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if found:
        return Path(found[-1])
    pg_config = shutil.which("pg_config")
    if pg_config:
        return Path(subprocess.run([pg_config, "--bindir"], check=True, capture_output=True, text=True).stdout.strip())
    raise FileNotFoundError("PostgreSQL's programs (initdb, pg_ctl): install postgresql or set postgres.bin_dir")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Instance:
    datadir: Path
    port: int
    programs: Path

    @property
    def _as_postgres(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [*self._as_postgres, str(self.programs / program), *args]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{program} failed: {(done.stderr or done.stdout).strip()[-2000:]}")
        return done

    def own(self, *paths: Path) -> None:
        """Give folders to the postgres login when we are root (PostgreSQL checks its data folder's owner)."""
        if os.geteuid() != 0:
            return
        account = pwd.getpwnam("postgres")
        for top in paths:
            os.chown(top, account.pw_uid, account.pw_gid)
            for folder, dirs, files in os.walk(top):
                for name in dirs + files:
                    os.chown(os.path.join(folder, name), account.pw_uid, account.pw_gid)

    def init(self, **settings: str) -> None:
        """A new cluster (trust for local connections: the instance listens on 127.0.0.1 only)."""
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.own(self.datadir)
        self.run("initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.configure(**settings)

    def configure(self, **settings: str) -> None:
        """Settings appended to postgresql.auto.conf (the last one read wins)."""
        lines = [f"{key} = '{value}'" for key, value in settings.items()]
        with open(self.datadir / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
            conf.write("\n".join(lines) + "\n")

    def start(self, wait_s: int = 120) -> None:
        self.configure(port=str(self.port), listen_addresses="127.0.0.1", unix_socket_directories=str(self.datadir))
        self.own(self.datadir)
        self.run(
            "pg_ctl", "-D", str(self.datadir), "-l", str(self.datadir / "server.log"), "-w", "-t", str(wait_s), "start"
        )

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        path = self.datadir / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def wait_promoted(self, timeout_s: float = 300) -> None:
        """Wait for recovery to end (the instance promoted); RuntimeError with the log if it stopped instead."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                engine = sa.create_engine(self.url(), poolclass=sa.pool.NullPool)
                with engine.connect() as conn:
                    if not conn.execute(sa.text("select pg_is_in_recovery()")).scalar():
                        return
            except sa.exc.OperationalError:
                if not (self.datadir / "postmaster.pid").exists():
                    raise RuntimeError(f"recovery stopped: {self.log()}") from None
            time.sleep(0.5)
        raise RuntimeError(f"recovery did not finish in {timeout_s:.0f} s: {self.log()}")
