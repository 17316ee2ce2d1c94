"""Safe result files: atomic writes, the permissions a plain open() gives, one writer per output.

A result exists under its final name complete, or not at all; files that belong together
(a run's CSV and its metadata) appear together or not at all; a full disk or a read-only
directory is one clear line (an `OutputError`), never a torch/pandas traceback.
Also the run CSV's columns and where a result's metadata JSON goes. No torch or pandas
here: aggregation jobs import this module too.
"""
from __future__ import annotations

import errno
import glob
import json
import os
import socket
import tempfile
from contextlib import contextmanager
from typing import Any

from mfbench.config import ConfigError

TMP_SUFFIX = ".tmp"


class OutputError(ConfigError):
    """An output that cannot be written (disk full, read-only, taken by another run): one line, exit 2."""


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it; set straight back
    os.umask(mask)
    return mask


def describe(e: OSError, path: str) -> str:
    """One line for a failed write, naming the file and what to do."""
    why = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
           errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
           errno.EPERM: "permission denied", errno.ENOTDIR: "a parent of it is a file, not a directory",
           errno.EISDIR: "it is a directory"}.get(e.errno, e.strerror or type(e).__name__)
    return f"cannot write {path}: {why}"


def tmp_pattern(path: str) -> str:
    d, base = os.path.split(os.path.abspath(path))
    return os.path.join(d, f".{glob.escape(base)}.*{TMP_SUFFIX}")


def _host() -> str:
    return socket.gethostname().replace(".", "-")


def _tmp_prefix(path: str) -> str:
    # host and pid in the name: a later write can tell a dead writer's leftover from a live one's file
    return f".{os.path.basename(path)}.{_host()}.{os.getpid()}."


def _writer_dead(tmp: str) -> bool:
    parts = os.path.basename(tmp).rsplit(".", 4)  # [".<base>", host, pid, random, "tmp"]
    if len(parts) != 5 or parts[1] != _host() or not parts[2].isdigit():
        return False  # another host's writer, or a name we did not make: not ours to judge
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return True
    except OSError:
        pass
    return False


def remove_stale_tmp(*paths: str, all_of_them: bool = False) -> list[str]:
    """Delete the temp files killed writes of `paths` left behind: those of dead writers on this
    host, or every one (`all_of_them`, when the caller holds the output's lock)."""
    gone = []
    for p in paths:
        for t in glob.glob(tmp_pattern(p), include_hidden=True):
            if all_of_them or _writer_dead(t):
                try:
                    os.remove(t)
                    gone.append(t)
                except OSError:
                    pass
    return gone


class _Staged:
    """The outputs of one command (`all_or_none`): temp files renamed into place together when it
    succeeds, and the directories its writes created (removed again, if empty, when it fails)."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, str]] = []
        self.new_dirs: list[str] = []


_STAGED: _Staged | None = None


def _makedirs(d: str) -> None:
    if d in _HELD_DIRS and not os.path.isdir(d):
        raise OutputError(f"output directory {d} vanished while this run was writing into it (removed or unmounted); "
                          "its checkpoint went with it. Restore the directory and run the same command again")
    made, p = [], d
    while p and not os.path.lexists(p) and p != os.path.dirname(p):
        made.append(p)
        p = os.path.dirname(p)
    os.makedirs(d, exist_ok=True)
    if _STAGED is not None:
        _STAGED.new_dirs += made


@contextmanager
def atomic_paths(*paths: str):
    """Yield one temp path per target; rename them all over their targets only if the block
    succeeds (renames need no space, so a full disk cannot split a group). Files get the mode
    a plain open() would give under the current umask, not mkstemp's 0600."""
    tmps: list[str] = []
    try:
        mode = 0o666 & ~_umask()
        for path in paths:
            d = os.path.dirname(os.path.abspath(path))
            _makedirs(d)
            remove_stale_tmp(path)
            fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path), suffix=TMP_SUFFIX, dir=d)
            tmps.append(tmp)
            os.fchmod(fd, mode)
            os.close(fd)
        yield tmps
        if _STAGED is not None:  # the command's other outputs are not written yet: rename all at its end
            _STAGED.pending += zip(tmps, paths)
            tmps = []
        for tmp, path in zip(tmps, paths):
            os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        target = paths[min(len(tmps), len(paths)) - 1] if tmps else paths[0]
        if isinstance(e, OSError):
            raise OutputError(describe(e, target)) from None
        if _disk_full(target):  # torch.save reports ENOSPC as a RuntimeError ("file write failed")
            raise OutputError(f"cannot write {target}: no space left on the device") from None
        raise
    finally:
        for tmp in tmps:
            if os.path.exists(tmp):
                os.remove(tmp)


def _disk_full(path: str) -> bool:
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1 << 20

COLUMNS = ["experiment", "dataset", "arch", "arch_detail", "algorithm", "schedule", "pred_mode", "depth", "width",
           "batch_size", "lr", "seed", "epoch", "phase", "split", "metric", "value", "unit"]


def meta_path(out: str) -> str:
    """The metadata JSON written beside result file `out`."""
    return os.path.splitext(out)[0] + ".meta.json"


def weights_path(out: str) -> str:
    """The finished rule's weights beside run CSV `out` (a run with `save_weights`: a pretrain run)."""
    return os.path.splitext(out)[0] + ".weights.pt"


@contextmanager
def atomic_path(path: str):
    """Yield a temp path beside `path`; rename it over `path` only if the block succeeds."""
    with atomic_paths(path) as (tmp,):
        yield tmp


def _csv(df, tmp: str, na_rep: str) -> None:
    df.to_csv(tmp, index=False, na_rep=na_rep)


def _json(obj: Any, tmp: str) -> None:
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=str)
        f.write("\n")


def write_csv(df, path: str, *, na_rep: str = "") -> None:
    with atomic_path(path) as tmp:
        _csv(df, tmp, na_rep)


def write_json(obj: Any, path: str) -> None:
    with atomic_path(path) as tmp:
        _json(obj, tmp)


def content_sha256(text: str) -> str:
    """The checksum a run's metadata records of its CSV: of the text, so a BOM, CRLF line ends or
    blank lines at the end (a spreadsheet's or an editor's save) do not change it; any changed,
    added or lost row does (a bit flip, a cut exactly at a row end: damage no CSV parser sees)."""
    import hashlib

    text = text.removeprefix("\ufeff").replace("\r\n", "\n").rstrip("\n") + "\n"
    return hashlib.sha256(text.encode()).hexdigest()


def write_csv_with_json(df, csv_path: str, obj: Any, json_path: str, *, na_rep: str = "") -> None:
    """A CSV and its metadata JSON, both or neither (never metadata without its CSV); the JSON
    records the CSV's checksum (`csv_sha256`), which the reader (mfbench.results_io) verifies."""
    with atomic_paths(csv_path, json_path) as (tc, tj):
        _csv(df, tc, na_rep)
        if isinstance(obj, dict):
            with open(tc, encoding="utf-8") as f:
                obj = {**obj, "csv_sha256": content_sha256(f.read())}
        _json(obj, tj)


def write_text(text: str, path: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def _name_max(d: str) -> int:
    try:
        return os.pathconf(d, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def check_output(path: str, *, flag: str = "--out", inputs: tuple[str, ...] = ()) -> None:
    """Fail before any work, creating nothing, when `path` cannot be written or must not be: a
    directory, a name too long for the file system (with the temp name a write needs), a parent
    that is a file or not writable, or one of the command's own `inputs`."""
    if not path:
        raise OutputError(f"{flag} is empty; name a file")
    a = os.path.abspath(path)
    if os.path.isdir(a):
        raise OutputError(f"{flag} {path} is a directory; name a file in it, e.g. {os.path.join(path, 'out.csv')}")
    d = os.path.dirname(a)
    anc = d
    while not os.path.lexists(anc):
        anc = os.path.dirname(anc)
    limit = _name_max(anc if os.path.isdir(anc) else "/")
    spare = len(_tmp_prefix(a)) - len(os.path.basename(a)) + 8 + len(TMP_SUFFIX)  # mkstemp's temp name
    for part in os.path.relpath(a, anc).split(os.sep):
        room = limit - (spare if part == os.path.basename(a) else 0)
        if len(part.encode()) > room:
            raise OutputError(f"{flag} {path}: name {part[:24]}... is too long ({len(part.encode())} bytes; "
                              f"at most {room} here)")
    if not os.path.isdir(anc):
        raise OutputError(f"{flag} {path}: a parent of it ({anc}) is a file, not a directory")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise OutputError(f"{flag} {path}: directory {anc} is not writable")
    for i in inputs:
        if os.path.realpath(i) == os.path.realpath(a) or (
                os.path.exists(i) and os.path.exists(a) and os.path.samefile(i, a)):
            raise OutputError(f"{flag} {path} is one of this command's inputs ({i}); writing it would destroy "
                              "the input: choose another path")


@contextmanager
def all_or_none(outputs: list[tuple[str, str]], inputs: tuple[str, ...] = ()):
    """Run a command's block with every output checked first (`check_output`), its writes staged,
    and renamed into place together only if the block succeeds (renames need no space: a full disk
    cannot split the set); on failure no output, temp file or new directory of it is left and
    earlier results stay as they were. `outputs`: (flag, path) pairs."""
    global _STAGED
    seen: dict[str, str] = {}
    for flag, p in outputs:
        check_output(p, flag=flag, inputs=inputs)
        r = os.path.realpath(p)
        if r in seen:
            raise OutputError(f"{flag} {p} is also {seen[r]}; each output needs its own path")
        seen[r] = f"{flag} {p}"
    _STAGED = st = _Staged()
    done = False
    try:
        yield
        _STAGED = None
        for tmp, path in st.pending:
            try:
                os.replace(tmp, path)
            except OSError as e:
                raise OutputError(describe(e, path)) from None
        done = True
    finally:
        _STAGED = None
        for tmp, _ in st.pending:
            if os.path.exists(tmp):
                os.remove(tmp)
        if not done:  # failed: take away the directories this command's writes made
            for d in sorted(set(st.new_dirs), key=len, reverse=True):
                try:
                    os.rmdir(d)
                except OSError:
                    pass


def check_writable(path: str, *, flag: str = "--out") -> None:
    """Fail before any work when `path` (or the metadata JSON beside it) cannot be written: a
    directory, a name too long, a parent that is a file, a directory without write permission.
    Creates the parent directories."""
    a = os.path.abspath(path)
    check_output(path, flag=flag)
    if os.path.isdir(meta_path(a)):
        raise OutputError(f"{flag} {path}: its metadata path {meta_path(path)} is a directory; remove it or choose "
                          "another --out")
    d = os.path.dirname(a)
    try:
        os.makedirs(d, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{flag} {path}: a parent of it is a file, not a directory") from None
    except OSError as e:
        raise OutputError(f"{flag} {describe(e, path).removeprefix('cannot write ')}") from None
    if not os.access(d, os.W_OK | os.X_OK):
        raise OutputError(f"{flag} {path}: directory {d} is not writable")


def check_unlocked(path: str, *, flag: str = "--out") -> None:
    """Refuse at once (before data is loaded) when another run holds `path`'s lock; takes nothing."""
    import fcntl

    try:
        fd = os.open(path + ".lock", os.O_RDONLY)
    except OSError:
        return  # no lock file: nobody holds it (or `exclusive` will say why it cannot make one)
    try:
        _lock_or_refuse(fd, fcntl.LOCK_SH, path, flag)
    finally:
        os.close(fd)


def _lock_or_refuse(fd: int, mode: int, path: str, flag: str) -> None:
    """flock `fd` without waiting; held by another run: one line naming it (the holder wrote its pid)."""
    import fcntl

    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        raise OutputError(f"{flag} {path} is being written by another run ({holder}); "
                          "wait for it or choose another --out") from None


_HELD_DIRS: set[str] = set()  # directories of outputs a run holds the lock of: never silently re-created


@contextmanager
def exclusive(path: str, *, flag: str = "--out"):
    """Hold `<path>.lock` (an flock, released by the kernel however the process ends) while one
    run writes `path` and its companions; a second run on the same path fails at once."""
    import fcntl

    lock = path + ".lock"
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise OutputError(f"{flag} {describe(e, lock).removeprefix('cannot write ')}") from None
    try:
        _lock_or_refuse(fd, fcntl.LOCK_EX, path, flag)
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the previous holder removed the file between our open and flock
            raise OutputError(f"{flag} {path} is being written by another run; wait for it or choose another --out")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        held = os.path.dirname(os.path.abspath(path))
        _HELD_DIRS.add(held)
        try:
            yield
        finally:
            _HELD_DIRS.discard(held)
            try:
                os.remove(lock)  # while still holding it; a run that opened the old file sees the inode change
            except FileNotFoundError:
                pass  # its directory vanished: `_makedirs` has said so
    finally:
        os.close(fd)


def file_sha256(path: str) -> str:
    """Checksum of a binary file's bytes (a pretrain run's weights, recorded by the run that loads them)."""
    import hashlib

    h = hashlib.sha256()  # hashlib.file_digest would do this, but needs Python 3.11 (we support 3.10)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
