"""The run directory: its file names, its schema, safe readers, and preparing `--out` for a fit.

A run directory is what `transferkit fit` writes and `predict`/`evaluate`/`--backbone RUN` read:
config.json (schema below, plus the task's own keys), model.safetensors, history.csv,
split.json, metrics.json, report.html and, while training, checkpoints/. Every reader here turns
a bad file into one `RunDirectoryError` line that names the file and what is wrong with it; no
reader unpickles anything (weights are safetensors; checkpoints load with `weights_only=True`).

This module sits at the bottom of the package (it imports no other transferkit layer), and
imports torch only inside the functions that need it.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .errors import RunDirectoryError, TransferkitError
from .safe_json import JsonProblem, parse_json, schema_problem  # noqa: F401 (read back through them)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
SPLIT_FILE = "split.json"
REPORT_FILE = "report.html"
EXAMPLES_FILE = "forecast_examples.json"
TOKENIZER_DIR = "tokenizer"
#: The exemplar memory a classification run keeps for `extend`: references and labels (JSON), and the
#: exemplars' features when the backbone stays frozen (safetensors).
MEMORY_FILE = "memory.json"
MEMORY_FEATURES = "memory.safetensors"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
LOCK_FILE = ".transferkit.lock"
#: What `transferkit export` writes into a run by default: the fp32 and int8 models and the record of
#: every export with its parity check (`transferkit.export`)
ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model.int8.onnx"
EXPORTS_FILE = "exports.json"

#: Everything a fit (or an export of it) may write into its run directory: what `--overwrite` clears
#: first (a refit must not leave the old model's exports behind), and what tells a run of ours from a
#: folder of the user's.
RUN_FILES = (CONFIG_FILE, WEIGHTS_FILE, HISTORY_FILE, METRICS_FILE, SPLIT_FILE, REPORT_FILE, EXAMPLES_FILE,
             TOKENIZER_DIR, CHECKPOINT_DIR, MEMORY_FILE, MEMORY_FEATURES, ONNX_FILE, ONNX_INT8_FILE, EXPORTS_FILE)

#: Keys every config.json has, with their types; a nested dict is the schema of a nested object.
#: Each task adds its own keys (`TransferEstimator.config_keys`).
#: Version of the run-directory format `save` writes (config.json "format"). 2: a model's heads are
#: named, so its tensors are `backbone.*` and `heads.<name>.*`; runs without the key are format 1,
#: whose one head was `head.*` (`upgrade_weights` reads them as format 2).
RUN_FORMAT = 2

CONFIG_SCHEMA: dict[str, Any] = {
    "task": str,
    "backbone": {"name": str, "family": str, "architecture": str, "num_features": int, "preprocessing": dict},
    "params": dict,
    "strategy": {"used": str, "settings": dict},
}


# ------------------------------------------------------------------ config.json
def read_json(path: Path, schema: Mapping[str, Any]) -> dict:
    """A JSON object file of a run checked against `schema`; one `RunDirectoryError` line if not."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirectoryError(f"{path}: unreadable ({_short(exc)}); re-run `transferkit fit`.") from None
    if not text.strip():
        raise RunDirectoryError(f"{path}: empty file; the run was not saved completely, re-run `transferkit fit`.")
    try:
        data = parse_json(text)
    except JsonProblem as exc:
        raise RunDirectoryError(f"{path}: corrupt JSON ({exc}); re-run `transferkit fit`.") from None
    problem = schema_problem(data, schema)
    if problem:
        raise RunDirectoryError(f"{path}: not a valid transferkit {path.name}: {problem}; re-run `transferkit fit`.")
    return data


def read_config(run_dir: str | Path, schema: Mapping[str, Any] | None = None) -> dict:
    """config.json of `run_dir`, checked against `schema` (default: the keys every run has);
    anything wrong raises one `RunDirectoryError` naming the file and the problem."""
    path = Path(run_dir).expanduser() / CONFIG_FILE
    if not path.parent.is_dir():
        raise RunDirectoryError(f"{path.parent}: no such run directory; pass the --out folder of `transferkit fit`.")
    if not path.is_file():
        raise RunDirectoryError(f"{path.parent}: not a transferkit run directory (no {CONFIG_FILE}); "
                                "pass the --out folder of `transferkit fit`.")
    return read_json(path, CONFIG_SCHEMA if schema is None else schema)


# ------------------------------------------------------------ model.safetensors
def safetensors_header(path: Path) -> dict[str, dict]:
    """The tensor table of a safetensors file ({name: {"dtype", "shape", "data_offsets"}}), after
    checking that the file is one and holds every byte its header promises. Nothing is unpickled:
    a pickle or `torch.save` file is reported as "not a safetensors file"."""
    if not path.is_file():
        raise RunDirectoryError(f"{path}: missing; the run was not saved completely, re-run `transferkit fit`.")
    size = path.stat().st_size
    if size == 0:
        raise RunDirectoryError(f"{path}: empty file; the run was not saved completely, re-run `transferkit fit`.")
    with path.open("rb") as fh:
        head = fh.read(9)
        # a safetensors file is an 8-byte header length and then the JSON header itself; the length
        # may start with 0x80 as a pickle does (a header of 0x..80 bytes), so only a file without
        # the JSON brace where it belongs is taken for a pickle or a torch.save zip
        if head[8:9] != b"{" and (head[:1] == b"\x80" or head[:4] == b"PK\x03\x04"):
            raise RunDirectoryError(f"{path}: not a safetensors file (it is a pickle / torch.save file, which "
                                    "transferkit never loads, since unpickling can run code); re-run `transferkit fit`.")
        if len(head) < 9:
            raise RunDirectoryError(f"{path}: not a safetensors file (only {size} bytes); re-run `transferkit fit`.")
        (header_size,) = struct.unpack("<Q", head[:8])
        fh.seek(8)
        if header_size > size - 8:
            raise RunDirectoryError(f"{path}: not a safetensors file, or truncated (header of {header_size} bytes "
                                    f"in a {size}-byte file); re-run `transferkit fit`.")
        try:
            header = json.loads(fh.read(header_size))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RunDirectoryError(f"{path}: not a safetensors file (unreadable header); re-run `transferkit fit`.") from None
    tensors = {k: v for k, v in header.items() if k != "__metadata__"} if isinstance(header, dict) else None
    if tensors is None or not all(isinstance(v, dict) and "shape" in v and "data_offsets" in v for v in tensors.values()):
        raise RunDirectoryError(f"{path}: not a safetensors file (unexpected header); re-run `transferkit fit`.")
    needed = max((int(v["data_offsets"][1]) for v in tensors.values()), default=0)
    if 8 + header_size + needed > size:
        raise RunDirectoryError(f"{path}: truncated ({size} bytes, the header promises {8 + header_size + needed}); "
                                "re-run `transferkit fit`.")
    return tensors


def read_weights(run_dir: str | Path) -> dict:
    """The tensors of `run_dir/model.safetensors` (safetensors only, never a pickle); a missing,
    empty, truncated or foreign file raises one `RunDirectoryError` line."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(run_dir).expanduser() / WEIGHTS_FILE
    safetensors_header(path)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise RunDirectoryError(f"{path}: not a readable safetensors file ({_short(exc)}); re-run `transferkit fit`.") from None


def check_tensor_shapes(expected: Mapping[str, Any], found: Mapping[str, Any], run_dir: str | Path) -> None:
    """Raise one line when the saved tensors (`found`: name → tensor or shape) do not fit the model
    config.json describes (`expected`: its state dict), e.g. a head for 5 classes where config.json
    lists 3; this runs before `load_state_dict`, whose error would be a multi-line traceback."""
    run_dir = Path(run_dir)
    weights, config = run_dir / WEIGHTS_FILE, run_dir / CONFIG_FILE

    def shape(v: Any) -> tuple[int, ...]:
        return tuple(getattr(v, "shape", v))

    for name, tensor in expected.items():
        if name in found and shape(found[name]) != shape(tensor):
            hint = " (its last layer must have one output per class in config.json)" if name.startswith("heads.") else ""
            raise RunDirectoryError(
                f"{weights}: tensor {name!r} has shape {list(shape(found[name]))}, but the model {config} describes "
                f"needs {list(shape(tensor))}{hint}; the two files come from different runs, re-run `transferkit fit`.")
    missing = [n for n in expected if n not in found]
    extra = [n for n in found if n not in expected]
    if missing or extra:
        what = (f"{len(missing)} tensor(s) missing (e.g. {missing[0]!r})" if missing else "") + \
               (", " if missing and extra else "") + \
               (f"{len(extra)} unexpected tensor(s) (e.g. {extra[0]!r})" if extra else "")
        raise RunDirectoryError(f"{weights}: does not fit the architecture in {config}: {what}; "
                                "the two files come from different runs, re-run `transferkit fit`.")


# ---------------------------------------------------------------- checkpoints
def read_checkpoint(path: str | Path) -> dict:
    """A Lightning checkpoint loaded with `weights_only=True` (tensors and plain data only, so a
    planted pickle cannot run code); unreadable files raise one line that says how to go on."""
    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch reports damage as RuntimeError, UnpicklingError, EOFError, ...
        raise RunDirectoryError(f"{path}: unreadable checkpoint ({_short(exc)}); delete it or rerun without "
                                "--resume.") from None


def run_parents(config: Mapping[str, Any]) -> list[dict[str, str]]:
    """The runs a run was built from, oldest first, as {"path", "relation"}: the run whose backbone it
    transferred (`--backbone RUN`: relation "backbone"), and the run each `extend` step grew
    ("extend"). Paths as recorded (absolute since parents are recorded); older runs may list none."""
    parents = []
    backbone = config.get("backbone") if isinstance(config.get("backbone"), Mapping) else {}
    meta = backbone.get("meta") if isinstance(backbone.get("meta"), Mapping) else {}
    if "parent_task" in meta:  # a backbone loaded from a run directory (backbones.run_dir)
        parents.append({"path": str(meta.get("parent_run") or backbone.get("name")), "relation": "backbone"})
    run = config.get("run") if isinstance(config.get("run"), Mapping) else {}
    for step in run.get("lineage") or []:
        if isinstance(step, Mapping) and step.get("parent"):
            parents.append({"path": str(step["parent"]), "relation": "extend"})
    return parents


def _short(exc: BaseException, limit: int = 120) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ------------------------------------------------------------------- --out
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


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all (aside, then renamed over the old file)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


def write_history(path: Path, rows: list[dict]) -> None:
    """history.csv: one row per epoch (or per setting tried), columns the union of the rows' keys."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def read_history(path: Path) -> list[dict]:
    """The rows of history.csv, numbers as floats ([] when the file is absent)."""
    if not path.is_file():
        return []
    with path.open() as fh:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _number(value: str):
    try:
        return float(value) if value not in ("", None) else None
    except ValueError:
        return value


def upgrade_weights(state: dict, config: dict, run_dir: str | Path, default_head: str) -> dict:
    """The tensors of a run as the current format names them: a format-1 run's `head.*` become
    `heads.<default_head>.*`. A run written by a newer transferkit (a higher "format") is refused
    with one line, since its files may mean something this version does not know."""
    version = config.get("format", 1)
    if not isinstance(version, int) or version > RUN_FORMAT:
        raise RunDirectoryError(f"{Path(run_dir) / CONFIG_FILE}: run format {version!r} is newer than this "
                                f"transferkit reads ({RUN_FORMAT}); upgrade transferkit (pip install -U transferkit).")
    if version >= 2:
        return state
    return {(f"heads.{default_head}.{k[len('head.'):]}" if k.startswith("head.") else k): v for k, v in state.items()}


def read_head_weights(run_dir: str | Path, head: str, config: dict | None = None) -> dict:
    """The tensors of head `head` of a run, without their `heads.<head>.` prefix ({"weight": ...,
    "bias": ...}), whatever the run's format (a format-1 run's one head is read as `head`);
    `config` is the run's config.json when the caller has read it already."""
    config = read_config(run_dir, {}) if config is None else config
    prefix = f"heads.{head}."
    state = upgrade_weights(read_weights(run_dir), config, run_dir, head)
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


# ------------------------------------------------------------- data locations
def record_data_location(summary: dict | None, run_dir: str | Path) -> dict | None:
    """The data summary a run saves with its data root made absolute (as seen from the working directory
    of the command that saves it) and also recorded relative to the run directory ("root_from_run"), so
    the run finds its data from any working directory, and after the run and its data moved together."""
    if not isinstance(summary, dict) or not summary.get("root"):
        return summary
    root = os.path.abspath(Path(str(summary["root"])).expanduser())
    try:
        from_run = os.path.relpath(root, os.path.abspath(run_dir))
    except ValueError:  # another drive (Windows): no relative path exists
        from_run = None
    return {**summary, "root": root, "root_from_run": from_run}


def resolve_data_root(summary: Mapping[str, Any] | None, run_dir: str | Path, out_as_given: str | None = None) -> str | None:
    """The data root of a saved run as an absolute path that exists, else the recorded one (None when none
    is recorded). Tried in turn: the recorded root (absolute since data locations are recorded), the root
    relative to the run directory ("root_from_run"), and for a run saved with a relative root, the
    working directory the fit ran in (the run directory less its --out as given, `out_as_given`), then
    the current one."""
    if not isinstance(summary, Mapping) or not summary.get("root"):
        return None
    recorded = Path(str(summary["root"])).expanduser()
    run = Path(os.path.abspath(Path(run_dir).expanduser()))
    candidates = [recorded] if recorded.is_absolute() else []
    if summary.get("root_from_run"):
        candidates.append(run / str(summary["root_from_run"]))
    if not recorded.is_absolute():
        out = Path(str(out_as_given)) if out_as_given else None
        if out is not None and not out.is_absolute() and out.parts and run.parts[-len(out.parts):] == out.parts:
            candidates.append(Path(*run.parts[:-len(out.parts)]) / recorded)
        candidates.append(Path(os.path.abspath(recorded)))
    candidates = [Path(os.path.normpath(c)) for c in candidates]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    return str(candidates[0]) if candidates else str(recorded)


# ------------------------------------------------------------------ metrics.json
#: metrics.json holds one block named after how its figures were measured: "test" (a held-out test
#: split) or "cross_validation" (out-of-fold predictions of every example); each block states `n`, the
#: examples (or windows) scored, and a cross-validation block its `folds`.
TEST, CROSS_VALIDATION = "test", "cross_validation"
#: metrics.json "format": absent in files written before the kinds were told apart (a cross-validated
#: estimate was then kept under "test")
METRICS_FORMAT = 2
METRICS_SCHEMAS: dict[str, dict[str, Any]] = {TEST: {"n": int}, CROSS_VALIDATION: {"n": int, "folds": int}}


@dataclass(frozen=True)
class Evaluation:
    """A run's evaluation as metrics.json records it: `kind` ("test" or "cross_validation"), `n`
    (examples scored), `folds` (cross-validation only) and the `metrics` themselves."""

    kind: str
    n: int | None
    metrics: dict
    folds: int | None = None

    @property
    def cross_validated(self) -> bool:
        return self.kind == CROSS_VALIDATION

    @property
    def domain(self) -> str:
        """"source " for a domain-adapted run, whose figures score the source domain (the target's are
        under "target_domain"), else ""."""
        return "source " if isinstance(self.metrics.get("target_domain"), Mapping) else ""

    def describe(self) -> str:
        """What the figures were measured on: "test split, n=120", "5-fold cross-validation, n=200"."""
        n = "" if self.n is None else f", n={self.n}"
        if self.cross_validated:
            return f"{self.domain}{self.folds or '?'}-fold cross-validation{n}"
        return f"{self.domain}test split{n}"

    def label(self, metric: str) -> str:
        """`metric` named as measured: "test accuracy (n=120)", "cross-validated accuracy (5-fold, n=200)"."""
        n = "" if self.n is None else f"n={self.n}"
        if self.cross_validated:
            return f"{self.domain}cross-validated {metric} ({self.folds or '?'}-fold{', ' + n if n else ''})"
        return f"{self.domain}test {metric}" + (f" ({n})" if n else "")

    @property
    def short(self) -> str:
        """The kind in a table cell: "test n=120", "5-fold CV n=200"."""
        n = "" if self.n is None else f" n={self.n}"
        return f"{self.domain}{self.folds or '?'}-fold CV{n}" if self.cross_validated else f"{self.domain}test{n}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "n": self.n, **({"folds": self.folds} if self.cross_validated else {})}


def metrics_record(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """What `save` writes to metrics.json: `metrics` under "cross_validation" (with their `folds`)
    when they are a cross-validated estimate (`evaluation_of`), else under "test"."""
    folds = evaluation_of(metrics).folds
    if folds:
        return {"format": METRICS_FORMAT, CROSS_VALIDATION: {**metrics, "folds": int(folds)}}
    return {"format": METRICS_FORMAT, TEST: dict(metrics)}


def evaluation_of(metrics: Mapping[str, Any]) -> Evaluation:
    """The `Evaluation` of metrics `evaluate()` returned on the run's own data: cross-validated when
    they state an estimate's method ("5-fold cross-validation"), else on the test split."""
    folds = metrics.get("folds") or _folds_of(metrics.get("estimate"))
    n = metrics.get("n") if isinstance(metrics.get("n"), int) else None
    return Evaluation(kind=CROSS_VALIDATION if folds else TEST, n=n, metrics=dict(metrics), folds=folds or None)


def _folds_of(text: Any) -> int | None:
    """5 from "5-fold cross-validation" (the method an estimate states)."""
    head = str(text or "").split("-fold", 1)[0].strip().split(" ")[-1]
    return int(head) if "-fold" in str(text or "") and head.isdigit() else None


def _recorded_folds(run_dir: Path) -> int | None:
    """The folds split.json (or config.json's split) records for a cross-validated run, else None."""
    for name, key in ((SPLIT_FILE, None), (CONFIG_FILE, "split")):
        try:
            data = parse_json((run_dir / name).read_bytes(), max_bytes=1 << 30)
        except (OSError, JsonProblem):
            continue
        data = data.get(key) if key and isinstance(data, dict) else data
        folds = data.get("cross_validation_folds") if isinstance(data, dict) else None
        if isinstance(folds, int) and not isinstance(folds, bool) and folds > 1:
            return folds
    return None


def read_metrics(run_dir: str | Path) -> Evaluation | None:
    """The evaluation of a run (None when it has no metrics.json), its file checked against
    `METRICS_SCHEMAS`: a bad one raises one `RunDirectoryError` line. A run saved before the two kinds
    were told apart kept a cross-validated estimate under "test": its "estimate" method or its
    split.json's folds tell, and it is read as the cross-validation it was."""
    run_dir = Path(run_dir).expanduser()
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return None
    data = read_json(path, {})
    kinds = [k for k in METRICS_SCHEMAS if k in data]
    if not kinds:
        raise RunDirectoryError(f"{path}: not a valid transferkit {METRICS_FILE}: missing key 'test' or "
                                f"'cross_validation'; re-run `transferkit fit`.")
    kind = kinds[-1]  # both: the cross-validation one (a file of ours never has both)
    block = data[kind]
    problem = schema_problem(block, METRICS_SCHEMAS[kind], kind)
    if problem:
        raise RunDirectoryError(f"{path}: not a valid transferkit {METRICS_FILE}: {problem}; re-run `transferkit fit`.")
    folds = block.get("folds")
    if kind == TEST and "format" not in data:  # written before the kinds were told apart
        folds = _folds_of(block.get("estimate")) or _recorded_folds(run_dir)
        if folds:
            kind = CROSS_VALIDATION
    metrics = dict(block)
    if folds:  # as `evaluate()` states a cross-validated estimate
        metrics.update(folds=folds, estimate=metrics.get("estimate") or f"{folds}-fold cross-validation")
    return Evaluation(kind=kind, n=block["n"], metrics=metrics, folds=folds)


# ------------------------------------------------------------------ lineage and exports
#: One `extend` step of config.json's run.lineage: the keys its readers rely on (the report, `runs`, the
#: next `extend`), and those that may be absent or null but have their type when given. Other keys
#: are free (they are shown as they are).
LINEAGE_STEP_SCHEMA: dict[str, Any] = {"old_classes": list[str], "added": list[str], "metrics": dict}
LINEAGE_STEP_OPTIONAL: dict[str, Any] = {"parent": str, "comparison": dict}


def read_lineage(config: Mapping[str, Any], run_dir: str | Path) -> list[dict]:
    """The `extend` steps of a run (config.json run.lineage, [] when none), each checked against
    `LINEAGE_STEP_SCHEMA`; a damaged one raises one `RunDirectoryError` line."""
    run = config.get("run") if isinstance(config.get("run"), Mapping) else {}
    lineage = run.get("lineage") or []
    path = Path(run_dir) / CONFIG_FILE
    if not isinstance(lineage, list):
        raise RunDirectoryError(f"{path}: 'run.lineage' must be a list of extend steps, not "
                                f"{type(lineage).__name__}; the run is damaged, re-run `transferkit extend`.")
    for n, step in enumerate(lineage):
        problem = schema_problem(step, LINEAGE_STEP_SCHEMA, f"run.lineage[{n}]", optional=LINEAGE_STEP_OPTIONAL)
        if problem:
            raise RunDirectoryError(f"{path}: not a valid transferkit {CONFIG_FILE}: {problem}; the run is damaged, "
                                    "re-run `transferkit extend`.")
    return lineage


#: One record of exports.json (`transferkit export`); "status" is "ok" for a kept export.
EXPORT_ENTRY_SCHEMA: dict[str, Any] = {"path": str, "format": str, "precision": str, "status": str}


def read_exports(run_dir: str | Path) -> list[dict]:
    """The exports recorded in RUN/exports.json ([] when absent), each checked against
    `EXPORT_ENTRY_SCHEMA`; a damaged file raises one `RunDirectoryError` line."""
    path = Path(run_dir) / EXPORTS_FILE
    if not path.is_file():
        return []
    entries = read_json(path, {"exports": list})["exports"]
    for n, entry in enumerate(entries):
        problem = schema_problem(entry, EXPORT_ENTRY_SCHEMA, f"exports[{n}]")
        if problem:
            raise RunDirectoryError(f"{path}: not a valid transferkit {EXPORTS_FILE}: {problem}; delete it and "
                                    "run `transferkit export` again.")
    return entries
