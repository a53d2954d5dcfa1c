"""The run directory's files: their names, the config.json schema, and the safe readers and writers.

Every reader here turns a bad file into one `RunDirectoryError` line that names the file and what is
wrong with it; no reader unpickles anything (weights are safetensors; checkpoints load with
`weights_only=True`). torch is imported only inside the functions that need it.
"""
from __future__ import annotations

import csv
import json
import struct
from pathlib import Path
from typing import Any, Mapping

from ..errors import RunDirectoryError
from ..safe_json import JsonProblem, parse_json, schema_problem  # noqa: F401 (read back through them)

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

