"""Dependencies owned by one test, each a process the test can kill, pause or restart: a
PostgreSQL cluster (initdb + pg_ctl), a Redis server, the `recommender worker` command. The broker
is tests/fixtures/services.py's Tansu (pause it, never restart it: it keeps its data in memory).

Nothing here touches the machine's shared Postgres or Redis: every data directory, socket and log
lives in the test's temporary folder, on ports chosen free below the ephemeral range.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.fixtures.server import recommender_command, terminate, wait_exit
from tests.fixtures.services import require

__all__ = ["PostgresCluster", "RedisServer", "WorkerProcess", "postgres_bindir"]

START_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 60

_POSTGRES_USER = "postgres"


def postgres_bindir() -> Path | None:
    """The newest installed server's bin directory (Debian keeps it off the PATH), else the
    directory of an `initdb` on the PATH."""
    installed = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()]
    if installed:
        return max(installed, key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0))
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


def _grant_traverse(path: Path) -> None:
    """Let another user reach ``path``: pytest makes its base folder private (0700), and the
    postgres user must walk through it to its data directory. Only the execute (search) bit is
    added, on folders this user owns: nobody can list them."""
    for folder in [path, *path.parents]:
        info = folder.stat()
        if info.st_uid == os.geteuid() and not info.st_mode & stat.S_IXOTH:
            folder.chmod(stat.S_IMODE(info.st_mode) | stat.S_IXOTH)


class PostgresCluster:
    """A throwaway cluster: trust authentication, 127.0.0.1 only, the socket beside the data.

    initdb and the server refuse to run as root, so under root every command runs as the
    postgres user (runuser) and the folder is handed to that user. fsync is off: the suite kills
    processes, never the machine, and the page cache survives a killed postmaster."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.data = root / "data"
        self.socket_dir = root / "socket"
        self.log_path = root / "postgres.log"
        self.url = f"postgresql+asyncpg://{_POSTGRES_USER}@127.0.0.1:{port}/postgres"
        self.dsn = f"postgresql://{_POSTGRES_USER}@127.0.0.1:{port}/postgres"
        self.starts = 0
        self._bindir = postgres_bindir()

    def _command(self, program: str, *args: str) -> list[str]:
        assert self._bindir is not None
        command = [str(self._bindir / program), *args]
        if os.geteuid() == 0:
            return ["runuser", "-u", _POSTGRES_USER, "--", *command]
        return command

    def _run(self, program: str, *args: str, timeout: float = START_TIMEOUT_S) -> None:
        result = subprocess.run(
            self._command(program, *args),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            pytest.fail(f"{program} {' '.join(args)} exited {result.returncode}:\n{output}")

    def create(self) -> None:
        require(self._bindir is not None, "PostgreSQL server binaries (initdb, pg_ctl)")
        if os.geteuid() == 0:
            require(shutil.which("runuser") is not None, "runuser (to run initdb as postgres)")
            try:
                account = pwd.getpwnam(_POSTGRES_USER)
            except KeyError:
                require(False, "the postgres system user")
                raise AssertionError("unreachable") from None
            self.root.mkdir(parents=True)
            self.socket_dir.mkdir()
            for folder in (self.root, self.socket_dir):
                os.chown(folder, account.pw_uid, account.pw_gid)
            _grant_traverse(self.root)
        else:
            self.socket_dir.mkdir(parents=True)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "--auth=trust",
            f"--username={_POSTGRES_USER}",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        settings = {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "fsync": "off",
            "max_connections": "200",
            # Who did what, when the log is read after a failure (%a: application_name).
            "log_line_prefix": "'%m [%p] %a '",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("".join(f"{name} = {value}\n" for name, value in settings.items()))

    def start(self) -> None:
        self.starts += 1
        with self.log_path.open("a") as log:
            log.write(f"===== start #{self.starts} =====\n")
        if os.geteuid() == 0 and self.starts == 1:
            # The log file is written by the postmaster, which runs as postgres.
            account = pwd.getpwnam(_POSTGRES_USER)
            os.chown(self.log_path, account.pw_uid, account.pw_gid)
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """``immediate`` is a crash (no checkpoint, sessions cut, recovery at the next start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        assert self._bindir is not None
        command = self._command("pg_ctl", "-D", str(self.data), "status")
        return subprocess.run(command, capture_output=True, check=False).returncode == 0

    def destroy(self) -> None:
        """Teardown: stop without a checkpoint if it runs; never raises."""
        if not self.data.exists():
            return
        try:
            if self.running():
                self.stop("immediate")
        except BaseException as exc:  # pytest.fail raises an OutcomeException
            print(f"stopping the test's Postgres failed: {exc}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self) -> str:
        return log_tail(self.log_path)


class RedisServer:
    """A redis-server without persistence: a kill loses every key, as a restarted cache does."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.log_path = log_path
        self.starts = 0
        self._binary = shutil.which("redis-server")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        require(self._binary is not None, "redis-server")
        assert self._binary is not None
        assert not self.running, "redis-server is already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"===== start #{self.starts} =====\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                [
                    self._binary,
                    *("--port", str(self.port), "--bind", "127.0.0.1"),
                    *("--save", "", "--appendonly", "no", "--daemonize", "no"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    pytest.fail(f"redis-server exited {self._process.returncode}:\n{self.tail()}")
                try:
                    if client.ping():
                        return
                except redis.exceptions.ConnectionError:
                    pass
                time.sleep(0.05)
        finally:
            client.close()
        pytest.fail(f"redis-server did not answer within {START_TIMEOUT_S}s:\n{self.tail()}")

    def kill(self) -> None:
        assert self._process is not None and self.running, "redis-server died before the kill"
        self._process.kill()
        self._process.wait(EXIT_TIMEOUT_S)

    def destroy(self) -> None:
        if self.running:
            self.kill()

    def tail(self) -> str:
        return log_tail(self.log_path)


class WorkerProcess:
    """`recommender worker` (the consumers and the relay, no HTTP) as a subprocess; every run
    appends to one log."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self._env = env
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self.starts = 0

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        assert not self.running, "the previous worker is still running"
        self.starts += 1
        command = recommender_command("worker")
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start #{self.starts} =====\n".encode())
            log.flush()
            self._log_offset = log.tell()
            self._process = subprocess.Popen(
                command,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def wait_ready(self) -> None:
        """Until this run logged `worker_started` (its runtime is built and the consumers run)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                pytest.fail(f"worker start #{self.starts} exited {self._process.returncode}")
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                if b"worker_started" in log.read():
                    return
            await asyncio.sleep(0.1)
        pytest.fail(f"worker start #{self.starts} not started within {START_TIMEOUT_S}s")

    async def kill(self) -> None:
        """SIGKILL: the batch in hand is cut wherever it is."""
        assert self._process is not None and self.running, "the worker died before the kill"
        self._process.send_signal(signal.SIGKILL)
        await wait_exit(self._process, EXIT_TIMEOUT_S)

    async def stop(self) -> None:
        """SIGTERM, SIGKILL if it does not exit in time. Never raises."""
        await terminate(self._process, "worker")

    def log_tail(self) -> str:
        return log_tail(self.log_path)
