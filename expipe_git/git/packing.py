"""When to pack loose objects, so that a project stays small by itself.

Every mutation leaves 6-7 loose objects (a blob, the trees on its path, the
commit), each its own file: 1,000 mutations left 6,824 files and 4.5 MB in
``.git``, where ``git gc`` makes one pack of 0.9 MB. New projects set
``gc.auto = 0`` (dulwich's gc writes packs without deltas and holds
everything in memory), so expipe_git packs (:mod:`.packwriter` writes the
packs; this module decides when):

- :func:`after_write` runs after every write has released the project's
  write lock. It estimates the loose objects from a sample of the fan-out
  folders (as git's own ``gc --auto`` does) and, past :data:`LOOSE_LIMIT`,
  starts a packer as :data:`auto` says: by default a Python process of its
  own, detached, niced and in the idle I/O class, so the writer shares
  neither its Python lock nor its core with the packing and its disk
  requests go first (docs/performance.md has the measurements).
- Every packer holds a lock of its own (``.git/expipe-git/pack-mutex``),
  never the write lock: mutations go on meanwhile, and a second packer
  skips. A packer process is handed the lock already taken (it inherits the
  locked file), so :func:`wait_for_packing` sees it from its first instant.
- :func:`pack_now` packs at once (``expipe-git gc``; tests).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

from . import lockfile
from .packwriter import Packer, PackReport
from .spares import STATE_DIR

# Loose objects past which a write starts packing: about 35 mutations. Loose
# objects cost a file each and are zlib'd one by one; packed they are a
# fraction of that, so this keeps ``.git`` near what ``git gc`` leaves.
LOOSE_LIMIT = 256
# How a write packs when it crosses the limit: "background" (a process of
# its own; a thread where a process cannot be handed the lock: Windows),
# "thread" (a thread of the writing process), "inline" (the writing call,
# after its commit landed) or "off". Benchmarks compare them; see
# docs/performance.md.
auto = "background"

_SAMPLED_FOLDERS = [f"{i:02x}" for i in range(3, 256, 16)]  # 16 of the 256 fan-out folders
_CHECK_EVERY = 32
_MUTEX = "pack-mutex"
_LOG = "packing.log"  # what a packer process has to say: its stderr
_LOG_MAX_BYTES = 1 << 20  # a longer log is started anew
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # expipe_git/
_NICENESS = 19  # a packer process yields the CPU (and, by the kernel's default, the disk) to writers
_MAX_ROUNDS = 20  # a packer process packs again while writers keep the loose objects over the limit
# A locked file handed to a child keeps it locked (flock locks the open
# file, which the child shares); msvcrt's locks are not handed over.
_PROCESS_CAN_HOLD_LOCK = os.name == "posix"

_log = logging.getLogger(__name__)
_running: set[str] = set()  # git folders a thread of this process packs now
_again: set[str] = set()  # of those, the ones a write found over the limit meanwhile
_suspended: set[str] = set()  # git folders whose writes start no packing (see suspended)
_running_lock = threading.Lock()
_writes: dict[str, int] = {}  # writes of this process, by git folder
_listed: dict[str, tuple[int, int]] = {}  # by git folder: (last estimate, loose_written then)
_children: dict[str, subprocess.Popen] = {}  # packer processes started here, by git folder


def _forget_running() -> None:
    _listed.clear()
    _running.clear()
    _again.clear()
    _children.clear()


if hasattr(os, "register_at_fork"):  # a forked child has none of its parent's threads or children
    os.register_at_fork(after_in_child=lambda: _forget_running())


def loose_estimate(git_dir: str) -> int:
    """Estimate the loose objects of a repository from 16 of its 256 fan-out folders."""
    objects = os.path.join(git_dir, "objects")
    found = 0
    for folder in _SAMPLED_FOLDERS:
        try:
            found += len(os.listdir(os.path.join(objects, folder)))
        except FileNotFoundError:
            continue
    return found * 256 // len(_SAMPLED_FOLDERS)


def after_write(git_dir: str, loose_written: int = 0) -> None:
    """Pack the loose objects if there are many; called after a write released the write lock.

    ``loose_written``: the loose objects this process has written to
    ``git_dir`` so far (a running count). The estimate (16 folder listings)
    is made on a process's first write, then when the last estimate plus
    what this process wrote since reaches :data:`LOOSE_LIMIT`, and at least
    every 32nd write (other processes write too). Listing more often slowed
    every mutation measurably (docs/performance.md).
    """
    if auto == "off" or (_suspended and os.path.abspath(git_dir) in _suspended):
        return
    writes = _writes.get(git_dir, 0)
    _writes[git_dir] = writes + 1
    last = _listed.get(git_dir)
    if last is not None and writes % _CHECK_EVERY and last[0] + loose_written - last[1] < LOOSE_LIMIT:
        return
    estimate = loose_estimate(git_dir)
    _listed[git_dir] = (estimate, loose_written)
    if estimate < LOOSE_LIMIT:
        return
    _listed[git_dir] = (0, loose_written)  # the packer takes those; list again after as many more
    if auto == "background" and _PROCESS_CAN_HOLD_LOCK and _python_to_run():
        start_packer(git_dir)
        return
    with _running_lock:
        if git_dir in _running:
            # Packing now, from a listing made before these objects: it packs
            # again when done, so the loose objects stay bounded however fast
            # this process writes.
            _again.add(git_dir)
            return
        _running.add(git_dir)
    if auto == "inline":
        _pack_quietly(git_dir)
        return
    # Not a daemon: the interpreter waits for it at exit, so a pack is not
    # left half-written by every short script (it would be cleaned up, but
    # the loose objects would stay).
    thread = threading.Thread(target=_pack_quietly, args=(git_dir,), name="expipe-git packing")
    try:
        thread.start()
    except RuntimeError:  # the interpreter is shutting down: the next writer packs
        with _running_lock:
            _running.discard(git_dir)


@contextlib.contextmanager
def suspended(git_dir: str) -> Iterator[None]:
    """Start no packing after this process's writes to ``git_dir`` during the block.

    For a repository being built that may be thrown away (an import): a
    packer would still be writing into it while it is removed.
    """
    key = os.path.abspath(git_dir)
    _suspended.add(key)
    try:
        yield
    finally:
        _suspended.discard(key)


def _pack_quietly(git_dir: str) -> None:
    try:
        while True:
            pack_now(git_dir, wait=False, in_background=auto != "inline")
            with _running_lock:
                if git_dir not in _again:
                    break
                _again.discard(git_dir)
    except (OSError, ValueError) as exc:
        # A full disk, a project removed meanwhile, a damaged pack (git fsck
        # names it): packing is never worth failing a write for, but it is said.
        _log.warning("packing the loose objects of %s failed (%s); a later write tries again", git_dir, exc)
    finally:
        with _running_lock:
            _running.discard(git_dir)
            _again.discard(git_dir)


def pack_now(
    git_dir: str, *, everything: bool = False, wait: bool = True, in_background: bool = False
) -> PackReport | None:
    """Pack the loose objects, then merge packs; return what was done.

    ``everything``: merge all packs into one (``expipe-git gc``), not only
    the small ones. ``wait``: wait for a packing that runs elsewhere, else
    return None at once. ``in_background``: a thread beside the process's
    own work: give way to it between objects.
    """
    with lockfile.exclusive(_mutex(git_dir)) if wait else lockfile.exclusive_or_skip(_mutex(git_dir)) as held:
        if held is False:
            return None
        # ``expipe-git gc`` makes a project as small as can be: no spares.
        return Packer(git_dir, in_background, make_spares=not everything).run(everything)


def _mutex(git_dir: str) -> str:
    state_dir = os.path.join(git_dir, STATE_DIR)
    os.makedirs(state_dir, exist_ok=True)
    return os.path.join(state_dir, _MUTEX)


# -- the packer process ---------------------------------------------------------

# The child imports only the modules it runs, not expipe_git's __init__ (the
# whole library: 0.3 s of CPU for each packing, against ~0.05 s).
_CHILD = """\
import os, sys, types
root = sys.argv[1]
for name, folder in (("expipe_git", root), ("expipe_git.git", os.path.join(root, "git"))):
    package = types.ModuleType(name)
    package.__path__ = [folder]
    sys.modules[name] = package
from expipe_git.git.packing import pack_in_child
pack_in_child(sys.argv[2], int(sys.argv[3]))
"""


def _python_to_run() -> bool:
    """Say whether this process can start a Python like itself (not in a frozen or embedded app)."""
    return bool(sys.executable) and not getattr(sys, "frozen", False)


def start_packer(git_dir: str) -> subprocess.Popen | None:
    """Start a packer process holding the packing lock and return it; None if a packer runs.

    Never waits for it: it outlives this process if need be. POSIX only
    (see :data:`auto`).
    """
    child = _children.get(git_dir)
    if child is not None and child.poll() is None:
        return None  # it packs again before it exits while the loose objects are over the limit
    _children.pop(git_dir, None)
    try:
        fd = os.open(_mutex(git_dir), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a read-only .git/expipe-git: never worth failing the write for
        _log.warning("could not start packing %s (%s); a later write tries again", git_dir, exc)
        return None
    try:
        if not lockfile.try_lock(fd):
            return None  # another process packs
        log_path = os.path.join(git_dir, STATE_DIR, _LOG)
        keep = os.path.exists(log_path) and os.path.getsize(log_path) < _LOG_MAX_BYTES
        with open(log_path, "ab" if keep else "wb") as log:
            _children[git_dir] = subprocess.Popen(
                [sys.executable, "-c", _CHILD, _PACKAGE_DIR, git_dir, str(fd)],
                cwd=git_dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                pass_fds=(fd,),  # the locked packing lock, and nothing else (not the write lock)
                start_new_session=True,  # not stopped by the terminal's Ctrl-C: it outlives its parent
            )
    except OSError as exc:
        _log.warning("could not start packing %s (%s); a later write tries again", git_dir, exc)
        return None
    finally:
        os.close(fd)  # ours only: the child's copy keeps the file locked until it exits
    # Lowered from here, at once: the child's own interpreter start and
    # imports (~50 ms of CPU) otherwise compete with the writer's next
    # mutations at full priority (they were 4 ms slower, docs/performance.md).
    _lower_priority(_children[git_dir].pid)
    return _children[git_dir]


def pack_in_child(git_dir: str, lock_fd: int) -> None:
    """Pack as a packer process: the parent handed over ``lock_fd``, the packing lock, taken."""
    try:
        for _ in range(_MAX_ROUNDS):
            Packer(git_dir).run(everything=False)
            if loose_estimate(git_dir) < LOOSE_LIMIT:
                break
    except (OSError, ValueError) as exc:
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} packing {git_dir} failed ({exc})", file=sys.stderr)
    finally:
        os.close(lock_fd)


def _lower_priority(pid: int) -> None:
    """Give a packer process the lowest CPU priority and, on Linux, the "idle" I/O class.

    Its disk requests then wait behind everyone else's; the kernel's I/O
    schedulers still serve them within seconds (mq-deadline's
    ``prio_aging_expire``, 10 s), so a packer is slowed, not starved. A
    process that is gone already, or a system that refuses, is left be.
    """
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, pid, _NICENESS)
    syscall_number = {"x86_64": 251, "aarch64": 30}.get(os.uname().machine)  # ioprio_set
    if sys.platform != "linux" or syscall_number is None:
        return
    import ctypes

    ioprio_who_process, ioprio_class_idle = 1, 3
    ctypes.CDLL(None).syscall(syscall_number, ioprio_who_process, pid, ioprio_class_idle << 13)


# -- waiting and measuring -------------------------------------------------------


def wait_for_background_packing(timeout: float = 60.0) -> None:
    """Wait until no packing thread or packer process started by this process runs (tests, benchmarks)."""
    deadline = time.monotonic() + timeout
    for git_dir, child in list(_children.items()):
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(max(0.0, deadline - time.monotonic()))
        if child.returncode is not None and _children.get(git_dir) is child:
            del _children[git_dir]
    while time.monotonic() < deadline:
        with _running_lock:
            if not _running:
                return
        time.sleep(0.01)


def wait_for_packing(git_dir: str, timeout: float = 60.0) -> bool:
    """Wait until no packer (of any process) packs ``git_dir``; False if one still does at ``timeout``."""
    mutex = os.path.join(git_dir, STATE_DIR, _MUTEX)
    if not os.path.exists(mutex):
        return True  # nothing ever packed here
    deadline = time.monotonic() + timeout
    while True:
        with lockfile.exclusive_or_skip(mutex) as held:
            if held:
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def objects_usage(git_dir: str) -> tuple[int, int]:
    """Return (files, bytes) under ``.git/objects``."""
    files = size = 0
    for folder, _, names in os.walk(os.path.join(git_dir, "objects")):
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                size += os.stat(os.path.join(folder, name)).st_size
                files += 1
    return files, size
