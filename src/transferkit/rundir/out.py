"""Preparing a fit's `--out` folder: checks, the lock against a second fit, `--overwrite` and `--resume`."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from ..errors import TransferkitError
from ..safe_json import JsonProblem, parse_json
from .files import (CHECKPOINT_DIR, CONFIG_FILE, LAST_CHECKPOINT, LOCK_FILE, REPORT_FILE, RUN_FILES, WEIGHTS_FILE,
                    _short)


def is_complete_run(path: Path) -> bool:
    """A run `save` finished: it writes config.json (with `transferkit_version`) last, so with it
    and the weights the run is whole."""
    if not (path / WEIGHTS_FILE).is_file():
        return False
    try:
        return "transferkit_version" in parse_json((path / CONFIG_FILE).read_bytes())
    except (OSError, JsonProblem, TypeError):
        return False


@dataclass
class PreparedRun:
    """An output folder made ready for a fit and locked against a second fit until `release()`.

    `complete` is True when `--resume` found a finished run: there is nothing to train, and
    `message` says so (with where the report is).
    """

    path: Path
    complete: bool = False
    resuming: bool = False
    message: str = ""
    _lock: Path | None = None
    #: the folders `prepare_out` made (deepest first): removed again by `release` while they hold no file
    _created: tuple[Path, ...] = ()

    def release(self) -> None:
        """Remove the lock file if it is still ours, and the folders `prepare_out` made if no file was
        written into them (a command that failed leaves no empty --out behind); idempotent."""
        if self._lock is not None:
            try:
                if self._lock.read_text().split()[0] == str(os.getpid()):
                    self._lock.unlink()
            except (OSError, IndexError):
                pass
            self._lock = None
        remove_empty_folders(self._created)
        self._created = ()

    def __enter__(self) -> "PreparedRun":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def prepare_out(out: str | Path, data: str | Path | None = None, overwrite: bool = False,
                resume: bool = False) -> PreparedRun:
    """Check and lock the run directory `out` of a fit, or raise one line that says what to do.

    Refused: a path that is a file or lies under one, a folder that cannot be created or written,
    a folder inside the data folder (an image run would be read as a class next time), a
    non-empty folder without --overwrite/--resume, `--resume` on a folder that is not a run of
    ours, and a folder another live fit holds the lock of. `--resume` on a finished run returns
    `complete=True` instead of training again; `--overwrite` removes the files of an earlier run
    (only names a run writes), so a later kill cannot leave the old model beside new checkpoints.
    """
    out = Path(out).expanduser()
    flag = f"--out {out}"
    created = tuple(p for p in (out, *out.parents) if not p.exists())
    try:
        _check_out_path(out, flag)
        if data is not None and Path(data).expanduser().is_dir():
            data_dir = Path(data).expanduser().resolve()
            target = out.resolve()
            if target == data_dir or data_dir in target.parents:
                raise TransferkitError(f"{flag}: is inside the data folder {data}; the run would be read as data by "
                                       "the next fit (an extra class of images). Choose a folder outside it.")
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # permission denied on a parent, a read-only file system, /proc, ...
        remove_empty_folders(created)
        raise TransferkitError(f"{flag}: cannot create the folder ({exc.strerror or _short(exc)}); "
                               "choose a writable location.") from None
    try:
        lock = _acquire_lock(out, flag)
    except BaseException:
        remove_empty_folders(created)
        raise
    prepared = PreparedRun(out, _lock=lock, _created=created)
    try:
        _classify(prepared, overwrite, resume)
    except OSError as exc:
        prepared.release()
        raise TransferkitError(f"{flag}: cannot prepare the folder ({exc.strerror or _short(exc)}: "
                               f"{exc.filename or out}); choose a writable location.") from None
    except BaseException:
        prepared.release()
        raise
    return prepared


def remove_empty_folders(folders: tuple[Path, ...] | list[Path]) -> None:
    """Remove each of `folders` (deepest first) that holds no file, with its empty sub-folders: what a
    command made for its output and then failed to fill. A folder with any file in it stays."""
    for folder in folders:
        if not folder.is_dir() or folder.is_symlink():
            continue
        for dirpath, _, _ in sorted(os.walk(folder), key=lambda w: -len(Path(w[0]).parts)):
            try:
                os.rmdir(dirpath)  # fails (and so keeps the folder) when anything is left in it
            except OSError:
                pass


@contextlib.contextmanager
def output_folder(folder: str | Path):
    """Make nothing up front, but remove again the folders (`folder` and parents) that did not exist
    before the block when the block fails and left no file in them: for commands that write an output
    file and create its folder on the way (`export --out DIR/model.onnx`)."""
    folder = Path(folder).expanduser()
    created = tuple(p for p in (folder, *folder.parents) if not p.exists())
    try:
        yield folder
    except BaseException:
        remove_empty_folders(created)
        raise


def file_above(path: Path) -> Path | None:
    """The nearest existing ancestor of `path` when it is a file (nothing can be written under it), else None."""
    existing = next((parent for parent in path.parents if parent.exists()), None)
    return existing if existing is not None and not existing.is_dir() else None


def _check_out_path(out: Path, flag: str) -> None:
    if out.exists() and not out.is_dir():
        raise TransferkitError(f"{flag}: is an existing file, not a folder; choose a folder path for the run.")
    blocking = file_above(out)
    if blocking is not None:
        raise TransferkitError(f"{flag}: {blocking} is a file, so no folder can be made under it; choose another path.")


def _acquire_lock(out: Path, flag: str) -> Path:
    """Create out/.transferkit.lock exclusively (O_EXCL) holding our pid; a lock left by a dead
    process (kill -9) is taken over, a live one is refused."""
    lock = out / LOCK_FILE
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _lock_owner(lock)
            if owner is not None and owner != os.getpid() and _alive(owner):
                raise TransferkitError(f"{flag}: another transferkit fit (pid {owner}) is writing this run; wait for "
                                       f"it to finish or choose another --out (if none is running, delete {lock}).") from None
            try:
                lock.unlink()  # stale: its process is gone
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise TransferkitError(f"{flag}: cannot replace the stale lock {lock} ({exc.strerror}).") from None
            continue
        except OSError as exc:
            raise TransferkitError(f"{flag}: cannot write in this folder ({exc.strerror or _short(exc)}); "
                                   "choose a writable location.") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{os.getpid()} {socket.gethostname()}\n")
        return lock
    raise TransferkitError(f"{flag}: another transferkit fit keeps taking the lock {lock}; choose another --out.")


def _lock_owner(lock: Path) -> int | None:
    try:
        fields = lock.read_text().split()
    except OSError:
        return None
    if not fields or not fields[0].isdigit():
        return None
    if len(fields) > 1 and fields[1] != socket.gethostname():
        return -1  # another machine's lock: cannot tell whether it lives, so keep it
    return int(fields[0])


def _alive(pid: int) -> bool:
    if pid == -1:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _classify(prepared: PreparedRun, overwrite: bool, resume: bool) -> None:
    out = prepared.path
    entries = {p.name for p in out.iterdir()} - {LOCK_FILE}
    flag = f"--out {out}"
    if not entries:
        return
    has_checkpoint = (out / CHECKPOINT_DIR / LAST_CHECKPOINT).is_file()
    if overwrite:
        for name in entries & set(RUN_FILES):
            target = out / name
            shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
        return
    if resume:
        if is_complete_run(out):
            report = out / REPORT_FILE
            prepared.complete = True
            prepared.message = (f"{out}: this run is already complete; nothing to resume"
                                + (f" (report: {report})" if report.is_file() else "")
                                + ". Pass --overwrite to train it again.")
        elif has_checkpoint:
            prepared.resuming = True
        elif entries != {CHECKPOINT_DIR}:  # only checkpoints/, still empty: killed in its first epoch
            raise TransferkitError(f"{flag}: not a transferkit run to resume (no {CHECKPOINT_DIR}/{LAST_CHECKPOINT}), "
                                   "and --resume would overwrite its files; choose another --out, or pass "
                                   "--overwrite to replace them.")
        return
    kind = "a finished run" if is_complete_run(out) else \
        "an interrupted run" if has_checkpoint else "not empty"
    raise TransferkitError(f"{flag}: already exists and is {kind}; pass --overwrite to replace it, "
                           "--resume to continue an interrupted run, or choose another --out.")
