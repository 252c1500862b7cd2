"""Starting, identifying and stopping the long-lived component processes of local clusters.

Components run in their own session so they outlive the Python process that started them (a restarted
emulator adopts them). A process is identified by pid *and* start time, so a recycled pid is never
mistaken for a component and never signalled.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# Popen objects of the components this interpreter started, kept so exited children are reaped (a
# zombie would otherwise still look alive through /proc).
_children: dict[int, subprocess.Popen[bytes]] = {}
_children_lock = threading.Lock()

# Once closed (the emulator is stopping), no component starts any more: a sweep of the cluster directories
# after closing then finds every process there is, even those a start still in flight had begun.
_spawn_lock = threading.Lock()
_spawning_closed = False


class SpawnRefused(RuntimeError):
    """A component was to start after close_spawning() (the process that drives the clusters is stopping)."""


def close_spawning() -> None:
    """Refuse every later spawn() in this process; returns once no spawn is in progress."""
    global _spawning_closed
    with _spawn_lock:
        _spawning_closed = True


@dataclass(frozen=True)
class ProcessRecord:
    """A running process: pid plus the kernel's start time (clock ticks since boot)."""

    pid: int
    start_ticks: int

    def to_json(self) -> dict[str, int]:
        """Serialise for the cluster state file."""
        return {"pid": self.pid, "start_ticks": self.start_ticks}

    @classmethod
    def from_json(cls, data: dict[str, int]) -> ProcessRecord:
        """Inverse of to_json."""
        return cls(pid=int(data["pid"]), start_ticks=int(data["start_ticks"]))


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces; everything after its closing parenthesis is fixed.
    return raw[raw.rindex(")") + 2 :].split()


def _start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None  # field 22 of stat overall


def _reap(pid: int) -> None:
    with _children_lock:
        child = _children.get(pid)
        if child is not None and child.poll() is not None:
            del _children[pid]


def is_alive(record: ProcessRecord) -> bool:
    """Whether the recorded process still runs (and is the same process, not a recycled pid)."""
    _reap(record.pid)
    fields = _stat_fields(record.pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return int(fields[19]) == record.start_ticks


def spawn(argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> ProcessRecord:
    """Start a component detached in its own session, logging stdout and stderr to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with _spawn_lock, open(log_path, "ab") as log:
        if _spawning_closed:
            raise SpawnRefused(f"not starting {Path(argv[0]).name}: the process driving local clusters is stopping")
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            close_fds=True,
        )
        with _children_lock:
            _children[process.pid] = process
    ticks = _start_ticks(process.pid)
    if ticks is None:
        raise RuntimeError(f"{argv[0]} exited immediately; see {log_path}")
    return ProcessRecord(process.pid, ticks)


def _signal_group(record: ProcessRecord, signum: int) -> None:
    if not is_alive(record):
        return
    try:
        # Each component leads its own session/group; signalling the group also reaches any helper it forked.
        # A process found by its command line may be such a helper rather than a group leader: signal it alone.
        if os.getpgid(record.pid) == record.pid:
            os.killpg(record.pid, signum)
        else:
            os.kill(record.pid, signum)
    except ProcessLookupError:
        return
    except PermissionError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(record.pid, signum)


def terminate(records: list[ProcessRecord], timeout: float = 15.0) -> None:
    """SIGTERM the processes, wait up to timeout for them to exit, then SIGKILL what remains."""
    for record in records:
        _signal_group(record, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    remaining = [record for record in records if is_alive(record)]
    while remaining and time.monotonic() < deadline:
        time.sleep(0.05)
        remaining = [record for record in remaining if is_alive(record)]
    for record in remaining:
        _signal_group(record, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while any(is_alive(record) for record in remaining) and time.monotonic() < deadline:
        time.sleep(0.05)


def command_lines_referencing(directory: Path) -> list[tuple[ProcessRecord, list[str]]]:
    """Live processes whose command line names a file inside directory, with their argv. Matching
    ``<directory>/`` keeps ``/x/c1`` from matching a sibling ``/x/c10``; this process is never listed."""
    needle = (str(directory).rstrip("/") + "/").encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if _names_path_under(cmdline, needle):
            fields = _stat_fields(int(entry.name))
            if fields is not None and fields[0] not in ("Z", "X"):
                argv = [part.decode(errors="replace") for part in cmdline.rstrip(b"\0").split(b"\0")]
                found.append((ProcessRecord(int(entry.name), int(fields[19])), argv))
    return found


def _names_path_under(cmdline: bytes, needle: bytes) -> bool:
    """Whether a NUL-separated command line holds a path starting with needle (`<dir>/`): at the start of an
    argument or after `=`, `,` or `:` (flag values, lists) -- never inside a longer path such as `/y<dir>/`."""
    start = cmdline.find(needle)
    while start != -1:
        if start == 0 or cmdline[start - 1 : start] in (b"\0", b"=", b",", b":"):
            return True
        start = cmdline.find(needle, start + 1)
    return False


def processes_referencing(directory: Path) -> list[ProcessRecord]:
    """Processes whose command line names a file inside directory: how components are found by their
    cluster directory when their pid was lost (or never recorded), never by a name match."""
    return [record for record, _ in command_lines_referencing(directory)]


def component_name(argv: list[str]) -> str:
    """A readable component name for a command line: `etcd`, `kube control-plane`, `kwok`, ..."""
    if not argv:
        return "?"
    name = Path(argv[0]).name
    if len(argv) > 1 and not argv[1].startswith("-"):
        return f"{name} {argv[1]}"
    return name


def terminate_referencing(directory: Path, timeout: float = 10.0) -> list[ProcessRecord]:
    """Stop every process whose command line names a file inside directory: clients first, etcd (which
    keeps the data) last. Returns what was found."""
    found = command_lines_referencing(directory)
    servers = [record for record, argv in found if Path(argv[0]).name == "etcd"]
    clients = [record for record, argv in found if Path(argv[0]).name != "etcd"]
    terminate(clients, timeout=timeout)
    terminate(servers, timeout=timeout)
    return clients + servers


def rss_bytes(record: ProcessRecord) -> int:
    """Resident set size of a live process, from /proc (0 when it is gone)."""
    if not is_alive(record):
        return 0
    try:
        for line in Path(f"/proc/{record.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


# Ports come from below the kernel's ephemeral range (32768+) so outgoing connections cannot take a port
# between allocation and the component binding it.
_PORT_RANGE = (20000, 32000)
_reserved_ports: set[int] = set()
_ports_lock = threading.Lock()


def port_is_free(port: int) -> bool:
    """Whether 127.0.0.1:port can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Like the Go servers that will bind it: a connection lingering in TIME_WAIT does not make it busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def allocate_ports(count: int) -> list[int]:
    """Pick count free loopback ports, never handing the same port to two clusters of this process."""
    with _ports_lock:
        chosen: list[int] = []
        attempts = 0
        while len(chosen) < count:
            attempts += 1
            if attempts > 10_000:
                raise RuntimeError(f"no free loopback port in {_PORT_RANGE}")
            port = random.randint(*_PORT_RANGE)  # noqa: S311 - not security sensitive
            if port in _reserved_ports or port in chosen or not port_is_free(port):
                continue
            chosen.append(port)
        _reserved_ports.update(chosen)
        return chosen


def release_ports(ports: list[int]) -> None:
    """Forget reservations of a deleted cluster's ports."""
    with _ports_lock:
        _reserved_ports.difference_update(ports)
