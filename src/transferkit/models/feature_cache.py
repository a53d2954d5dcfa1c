"""On-disk cache of frozen-backbone features, keyed by what the backbone is and what each file holds.

Layout under the cache root (TRANSFERKIT_CACHE, default `$XDG_CACHE_HOME/transferkit/features`,
i.e. ~/.cache/transferkit/features; TRANSFERKIT_CACHE=off turns it off):

    files.sqlite                 path → (device, inode, size, mtime) → blake2b-128 of the bytes
    <model key>/meta.json        what the key stands for (backbone, preprocessing, flip), for `cache info`
    <model key>/<id>.feats.npy   float32 [n, d] features, read memory-mapped
    <model key>/<id>.keys.npy    |S16 [n] content digests of those n rows

The model key hashes the backbone's class, structure (repr and scalar attributes, so a layer cut
differs), every weight and buffer byte, its device and dtype, the dataset's preprocessing (decoder
shrink + transform repr), the flip averaging, and the versions of torch and this format. A row's
key is the content digest of its file: a renamed or copied file hits, an edited one misses.

Correctness of the stat pre-check: a file's digest is reused without reading it only when its
device, inode, size and mtime (ns) match the entry AND the mtime is older than the hashing by
more than `RACY_SECONDS` (git's "racy clean" rule): an edit within the same timestamp tick as
the hashing is therefore still seen. An edit that keeps size and restores the mtime on purpose
(`touch -r`) is not seen, as by make or rsync; TRANSFERKIT_CACHE_VERIFY=1 always reads the bytes.

Atomic writes: a shard's two files are written under temporary names, flushed, fsync'ed and
renamed, the keys file last; a shard exists only once its keys file does, and a shard whose
files do not match in shape or size is skipped. A killed run thus leaves complete shards (its
work so far, reused next time) and at worst temporary or orphan files that are never read and
that `transferkit cache clear` removes. The cache is pruned to TRANSFERKIT_CACHE_MAX_GB
(default 20): the model keys used least recently first, and their oldest shards first.

The mark: a cache folder holds a CACHEDIR.TAG (the Cache Directory Tagging convention, which backup
tools honour too), written when transferkit creates the folder. A folder without it is never
written into, pruned or cleared: TRANSFERKIT_CACHE pointed at a folder of the user's costs the
cache (a warning says so), never the user's files.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import TransferkitError
from ..safe_json import JsonProblem, parse_json, schema_problem

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
ENV_DIR, ENV_VERIFY, ENV_MAX_GB = "TRANSFERKIT_CACHE", "TRANSFERKIT_CACHE_VERIFY", "TRANSFERKIT_CACHE_MAX_GB"
OFF_VALUES = frozenset({"0", "off", "false", "no", "none"})
#: A stat entry is trusted only for files last modified this long before they were hashed.
RACY_SECONDS = 2.0
DEFAULT_MAX_GB = 20.0
KEY_DTYPE = np.dtype("S16")
#: Rows buffered before a shard is written (and bytes: wide features make shorter shards).
SHARD_ROWS, SHARD_BYTES = 8192, 64 * 2**20


ON_VALUES = frozenset({"1", "on", "true", "yes"})
MARK_FILE = "CACHEDIR.TAG"
MARK_SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"
MARK = MARK_SIGNATURE + b"\n# A transferkit feature cache: `transferkit cache clear` empties it.\n"
#: What a model key's meta.json holds (`model_key`'s description).
META_SCHEMA = {"format": int, "torch": str, "module": str, "weights_blake2b": str, "device": str, "dtype": str,
               "hflip": bool, "preprocessing": str}


def check_cache_environment() -> None:
    """Raise one line for a cache environment variable that does not mean anything (checked before
    any work, rather than ignored or found wrong after it): TRANSFERKIT_CACHE_MAX_GB must be a finite
    number of at least 0, TRANSFERKIT_CACHE_VERIFY one of 1/0, on/off, true/false, yes/no."""
    budget_bytes()
    verify = os.environ.get(ENV_VERIFY, "").strip().lower()
    if verify and verify not in OFF_VALUES | ON_VALUES:
        raise TransferkitError(f"{ENV_VERIFY}={os.environ[ENV_VERIFY]!r}: expected 1 or 0 (on/off, true/false); "
                               "set it to 1 to re-read every file's bytes, or unset it.")


def budget_bytes() -> float:
    """The cache's size budget: TRANSFERKIT_CACHE_MAX_GB (default 20) in bytes; a value that is not a
    finite number of at least 0 raises one line."""
    value = os.environ.get(ENV_MAX_GB, "").strip()
    if not value:
        return DEFAULT_MAX_GB * 1e9
    try:
        gb = float(value)
    except ValueError:
        gb = float("nan")
    if not (0 <= gb < float("inf")):
        raise TransferkitError(f"{ENV_MAX_GB}={os.environ[ENV_MAX_GB]!r}: expected the cache's size limit in GB, a "
                               f"number of at least 0 (e.g. {ENV_MAX_GB}=20); fix or unset it.")
    return gb * 1e9


def is_marked(root: Path) -> bool:
    """Whether `root` carries the mark transferkit writes into the cache folders it creates."""
    try:
        with open(root / MARK_FILE, "rb") as f:
            return f.read(len(MARK_SIGNATURE)) == MARK_SIGNATURE
    except OSError:
        return False


_REFUSED: set[str] = set()


def claim_root(root: Path) -> bool:
    """Make `root` usable as the cache: True when it carries the mark, or is new or empty (then it is
    created and marked), or holds nothing but this cache's own files (a cache written before the
    mark existed). A folder with other files is not touched: a warning, and False."""
    if is_marked(root):
        return True
    try:
        if root.exists():
            if not root.is_dir() or any(not _cache_entry(p) for p in root.iterdir()):
                if str(root) not in _REFUSED:
                    _REFUSED.add(str(root))
                    log.warning("feature cache: %s is not a transferkit cache folder (it holds other files and no %s); "
                                "features are not cached. Point %s at a new or empty folder.", root, MARK_FILE, ENV_DIR)
                return False
        root.mkdir(parents=True, exist_ok=True)
        _atomic_write(root / MARK_FILE, lambda f: f.write(MARK))
        return True
    except OSError as exc:
        log.warning("feature cache: cannot use %s (%s); features are not cached", root, exc)
        return False


def _cache_entry(path: Path) -> bool:
    """A file or folder this cache writes at its root: the file index, a model key's folder."""
    if path.name.startswith(("files.sqlite", ".tmp-")) and path.is_file():  # .tmp-: another process's write
        return True
    return path.is_dir() and _is_key_name(path.name) and read_meta(path) is not None


def _is_key_name(name: str) -> bool:
    return len(name) == 32 and all(c in "0123456789abcdef" for c in name)


def read_meta(key_dir: Path) -> dict | None:
    """A model key's meta.json, checked against `META_SCHEMA`; None when absent or damaged."""
    try:
        data = parse_json((key_dir / "meta.json").read_bytes(), max_bytes=2**20)
    except (OSError, JsonProblem):
        return None
    return None if schema_problem(data, META_SCHEMA) else data


def meta_problem(key_dir: Path) -> str | None:
    """Why a model key's meta.json cannot be read ("missing key 'module'"), or None."""
    try:
        data = parse_json((key_dir / "meta.json").read_bytes(), max_bytes=2**20)
    except OSError as exc:
        return f"meta.json unreadable ({exc.strerror or exc})"
    except JsonProblem as exc:
        return f"meta.json corrupt ({exc})"
    problem = schema_problem(data, META_SCHEMA)
    return f"meta.json: {problem}" if problem else None


def cache_root(location: str | os.PathLike | bool | None = None) -> Path | None:
    """The cache directory: `location` if given (False: off), else TRANSFERKIT_CACHE (off/0/none:
    off), else $XDG_CACHE_HOME/transferkit/features (~/.cache/transferkit/features). The cache's
    environment variables are checked here, before any work (`check_cache_environment`)."""
    if location is False:
        return None
    check_cache_environment()
    value = str(location) if location not in (None, True) else os.environ.get(ENV_DIR, "").strip()
    if value.lower() in OFF_VALUES:
        return None
    if value:
        return Path(value).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "transferkit" / "features"


# ------------------------------------------------------------------------------------------ file digests
def file_digest(path: str | os.PathLike) -> bytes:
    """blake2b-128 of the file's bytes (about 1 GB/s; image decoding is far slower)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).digest()


class FileDigests:
    """Content digests of files, with a stat index (sqlite) so unchanged files are not reread.

    Any sqlite problem (read-only disk, damaged file, lock timeout) falls back to reading every
    file: the index only saves time, it never decides a digest on its own.
    """

    def __init__(self, root: Path, verify: bool | None = None) -> None:
        self.verify = os.environ.get(ENV_VERIFY, "").strip().lower() not in ("", *OFF_VALUES) if verify is None \
            else verify
        self.path = root / "files.sqlite"
        self.read = 0  # files whose bytes were hashed (not answered by the index), for tests and benchmarks

    def _connect(self) -> sqlite3.Connection | None:
        if not claim_root(self.path.parent):
            return None
        try:
            con = sqlite3.connect(self.path, timeout=30)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, dev INTEGER, ino INTEGER, "
                        "size INTEGER, mtime_ns INTEGER, digest BLOB, hashed_ns INTEGER)")
            return con
        except (sqlite3.Error, OSError) as exc:
            log.warning("feature cache: file index %s unusable (%s); hashing every file", self.path, exc)
            return None

    def digests(self, paths: Sequence[Path]) -> np.ndarray:
        """The digest of each path (|S16 array, in order)."""
        out = np.zeros(len(paths), KEY_DTYPE)
        con = None if self.verify else self._connect()
        known: dict[str, tuple] = {}
        names = [os.path.abspath(p) for p in paths]
        if con is not None:
            try:
                for i in range(0, len(names), 500):
                    chunk = names[i:i + 500]
                    rows = con.execute(f"SELECT * FROM files WHERE path IN ({','.join('?' * len(chunk))})", chunk)
                    known.update((row[0], row[1:]) for row in rows)
            except sqlite3.Error as exc:
                log.warning("feature cache: file index %s unreadable (%s); hashing every file", self.path, exc)
                con, known = None, {}
        fresh = []
        for n, (name, path) in enumerate(zip(names, paths)):
            st = os.stat(path)
            stat = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            entry = known.get(name)
            if entry is not None and tuple(entry[:4]) == stat and entry[3] < entry[5] - RACY_SECONDS * 1e9:
                out[n] = entry[4]
                continue
            hashed_ns = time.time_ns()
            out[n] = digest = file_digest(path)
            self.read += 1
            after = os.stat(path)
            if (after.st_size, after.st_mtime_ns) == stat[2:]:  # not written to while it was read
                fresh.append((name, *stat, digest, hashed_ns))
        if con is not None:
            try:
                with con:
                    con.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)", fresh)
            except sqlite3.Error as exc:
                log.warning("feature cache: could not update the file index %s (%s)", self.path, exc)
            finally:
                con.close()
        return out


# --------------------------------------------------------------------------------------- model identity
_WEIGHT_DIGESTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def weights_digest(module) -> str:
    """blake2b of every parameter and buffer (names, dtypes, shapes, bytes); memoised per module
    until a tensor is replaced or changed in place (its storage pointer or version counter moves)."""
    import torch

    state = module.state_dict(keep_vars=True)
    stamp = tuple((name, t.data_ptr(), t._version) for name, t in state.items())
    memo = _WEIGHT_DIGESTS.get(module)
    if memo is not None and memo[0] == stamp:
        return memo[1]
    h = hashlib.blake2b(digest_size=16)
    for name, tensor in state.items():
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    digest = h.hexdigest()
    _WEIGHT_DIGESTS[module] = (stamp, digest)
    return digest


def module_structure(module) -> str:
    """The module's repr plus every submodule's public scalar attributes (a layer index, a pooling
    mode), which a repr may leave out."""
    parts = [repr(module)]
    for name, sub in module.named_modules():
        scalars = {k: v for k, v in vars(sub).items()
                   if not k.startswith("_") and k != "training" and isinstance(v, (bool, int, float, str))}
        if scalars:
            parts.append(f"{name}:{sorted(scalars.items())}")
    return "\n".join(parts)


def model_key(module, preprocessing: str, hflip: bool) -> tuple[str, dict]:
    """The cache key of (backbone, preprocessing, flip averaging) and a readable description of it."""
    import torch

    param = next(module.parameters(), None)
    describe = {
        "format": CACHE_FORMAT, "torch": torch.__version__,
        "module": f"{type(module).__module__}.{type(module).__qualname__}",
        "weights_blake2b": weights_digest(module),
        "device": param.device.type if param is not None else "cpu",
        "dtype": str(param.dtype) if param is not None else "",
        "hflip": bool(hflip), "preprocessing": preprocessing,
    }
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps(describe, sort_keys=True).encode())
    h.update(module_structure(module).encode())
    return h.hexdigest(), describe


# ------------------------------------------------------------------------------------------ shard store
def _atomic_write(path: Path, write) -> None:
    """`write(file)` into a temporary file beside `path`, flushed to disk, then renamed onto it."""
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:12]}-{path.name}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _open_shard(keys_path: Path) -> tuple[np.ndarray, Path] | None:
    """The keys of a complete shard and its features file; None (and a warning) for a damaged one."""
    feats_path = keys_path.with_name(keys_path.name[: -len(".keys.npy")] + ".feats.npy")
    try:
        keys = np.load(keys_path, mmap_mode="r", allow_pickle=False)
        feats = np.load(feats_path, mmap_mode="r", allow_pickle=False)
        ok = (keys.dtype == KEY_DTYPE and keys.ndim == 1 and feats.dtype == np.float32 and feats.ndim == 2
              and len(feats) == len(keys) and feats.offset + feats.nbytes == feats_path.stat().st_size)
        out = np.array(keys) if ok else None
        del keys, feats
    except (OSError, ValueError, EOFError) as exc:
        log.warning("feature cache: skipped damaged shard %s (%s)", keys_path, exc)
        return None
    if out is None:
        log.warning("feature cache: skipped damaged shard %s (shapes or size do not match)", keys_path)
        return None
    return out, feats_path


@dataclass
class Lookup:
    """Where each queried key is cached: `shard[i]` (-1: not cached) and `row[i]`."""

    shard: np.ndarray
    row: np.ndarray

    @property
    def hits(self) -> int:
        return int((self.shard >= 0).sum())


class FeatureStore:
    """The shards of one model key: look keys up, read rows (memory-mapped), append new rows."""

    def __init__(self, root: Path, key: str, describe: dict | None = None) -> None:
        self.root, self.dir = root, root / key
        self.describe = describe or {}
        self.shards: list[Path] = []  # features files, indexed by `Lookup.shard`
        self._pending_keys: list[np.ndarray] = []
        self._pending_feats: list[np.ndarray] = []
        self.written = 0

    def lookup(self, keys: np.ndarray) -> Lookup:
        """Find `keys` among the complete shards on disk now."""
        shard = np.full(len(keys), -1, np.int64)
        row = np.zeros(len(keys), np.int64)
        if not self.dir.is_dir() or not len(keys):
            return Lookup(shard, row)
        all_keys, owners, rows = [], [], []
        for keys_path in sorted(self.dir.glob("*.keys.npy")):
            if keys_path.name.startswith(".tmp-"):
                continue
            opened = _open_shard(keys_path)
            if opened is None:
                continue
            stored, feats_path = opened
            owners.append(np.full(len(stored), len(self.shards), np.int64))
            rows.append(np.arange(len(stored), dtype=np.int64))
            all_keys.append(stored)
            self.shards.append(feats_path)
        if not all_keys:
            return Lookup(shard, row)
        stored = np.concatenate(all_keys)
        owner, where = np.concatenate(owners), np.concatenate(rows)
        order = np.argsort(stored, kind="stable")
        stored, owner, where = stored[order], owner[order], where[order]
        pos = np.searchsorted(stored, keys).clip(0, len(stored) - 1)
        found = stored[pos] == keys
        shard[found], row[found] = owner[pos[found]], where[pos[found]]
        if found.any():  # recently used: pruning removes the model keys unused the longest
            os.utime(self.dir)
        return Lookup(shard, row)

    def read(self, lookup: Lookup, indices: np.ndarray, chunk: int = 1024) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(dataset indices, features) of the cached `indices`, shard by shard, `chunk` rows at a
        time; each shard is mapped only while it is read, so memory stays bounded by one chunk."""
        for s in np.unique(lookup.shard[indices]):
            mine = indices[lookup.shard[indices] == s]
            mine = mine[np.argsort(lookup.row[mine], kind="stable")]  # sequential reads
            feats = np.load(self.shards[s], mmap_mode="r", allow_pickle=False)
            try:
                for i in range(0, len(mine), chunk):
                    part = mine[i:i + chunk]
                    yield part, np.array(feats[lookup.row[part]], np.float32)
            finally:
                del feats

    def add(self, keys: np.ndarray, feats: np.ndarray) -> None:
        """Queue computed rows; a shard is written whenever enough are queued (and on `flush`)."""
        self._pending_keys.append(np.asarray(keys, KEY_DTYPE))
        self._pending_feats.append(np.asarray(feats, np.float32))
        rows = sum(len(k) for k in self._pending_keys)
        if rows >= SHARD_ROWS or rows * feats.shape[1] * 4 >= SHARD_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the queued rows as one shard (features first, keys last: see the module docstring)."""
        if not self._pending_keys:
            return
        keys, feats = np.concatenate(self._pending_keys), np.concatenate(self._pending_feats)
        self._pending_keys, self._pending_feats = [], []
        if not claim_root(self.root):
            return
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            meta = self.dir / "meta.json"
            if not meta.exists():
                _atomic_write(meta, lambda f: f.write(json.dumps(self.describe, indent=2).encode()))
            name = f"{time.time_ns():x}-{uuid.uuid4().hex[:8]}"
            _atomic_write(self.dir / f"{name}.feats.npy", lambda f: np.save(f, feats, allow_pickle=False))
            _atomic_write(self.dir / f"{name}.keys.npy", lambda f: np.save(f, keys, allow_pickle=False))
            self.written += len(keys)
        except OSError as exc:  # a full or read-only disk costs the cache, never the run
            log.warning("feature cache: could not write to %s (%s); features are not cached", self.dir, exc)
            return
        prune(self.root)


# ---------------------------------------------------------------------------------- info, clear, prune
def _model_dirs(root: Path, damaged: bool = False) -> list[Path]:
    """The model-key folders of a marked cache (named by a key, holding a valid meta.json, or with
    `damaged` any meta.json): never a folder the cache did not write."""
    if not root.is_dir() or not is_marked(root):
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and _is_key_name(p.name) and (p / "meta.json").is_file()
                  and (damaged or read_meta(p) is not None))


def prune(root: Path, max_bytes: float | None = None) -> int:
    """Delete shards, least recently used model keys first, until the cache holds at most
    `max_bytes` (default TRANSFERKIT_CACHE_MAX_GB, 20 GB); returns the bytes freed."""
    if max_bytes is None:
        try:
            max_bytes = budget_bytes()
        except TransferkitError:  # checked before the run (cache_root); changed since: keep the default
            max_bytes = DEFAULT_MAX_GB * 1e9
    # least recently used model keys first (a cache hit touches its folder), oldest shards within one
    files = [((sub.stat().st_mtime, e.stat().st_mtime), e.stat().st_size, Path(e.path))
             for sub in _model_dirs(root) for e in os.scandir(sub) if e.is_file() and e.name.endswith(".npy")]
    total = sum(size for _, size, _ in files)
    freed = 0
    for _, size, path in sorted(files):
        if total - freed <= max_bytes:
            break
        path.unlink(missing_ok=True)  # either file of a shard gone: the shard is skipped, then swept
        freed += size
    return freed


def cache_info(root: Path) -> dict:
    """What the cache holds: per model key, rows, bytes and what the key stands for (a key whose
    meta.json is damaged is listed with its `problem`). A folder without the cache's mark holds no
    cache: `marked` False and no models."""
    models = []
    marked = root.is_dir() and is_marked(root)
    for sub in _model_dirs(root, damaged=True):
        shards = [s for s in sub.glob("*.keys.npy") if not s.name.startswith(".tmp-")]
        rows = 0
        for keys_path in shards:
            opened = _open_shard(keys_path)
            rows += len(opened[0]) if opened else 0
        size = sum(f.stat().st_size for f in sub.iterdir() if f.is_file())
        meta = read_meta(sub) or {}
        models.append({"key": sub.name, "shards": len(shards), "rows": rows, "bytes": size,
                       "module": meta.get("module"), "hflip": meta.get("hflip"),
                       "preprocessing": meta.get("preprocessing"), "problem": meta_problem(sub) if not meta else None})
    index = root / "files.sqlite"
    return {"root": str(root), "marked": marked, "models": models,
            "bytes": sum(m["bytes"] for m in models) + sum(f.stat().st_size for f in root.glob("files.sqlite*"))
            if marked else 0,
            "file_index": str(index) if marked and index.exists() else None}


def clear_cache(root: Path) -> int:
    """Remove every shard, temporary file and the file index under `root`; returns bytes freed.
    Only files this cache writes are removed, and only in a folder with the cache's mark: a root
    pointed at a folder of the user's raises one line and keeps its files."""
    freed = 0
    if not root.is_dir():
        return 0
    if not is_marked(root):
        raise TransferkitError(f"{root}: not a transferkit feature cache (no {MARK_FILE} mark, which transferkit "
                               f"writes into the cache folders it creates); nothing was deleted. Check {ENV_DIR}, "
                               "or delete the folder yourself if it really is an old cache.")
    for sub in _model_dirs(root, damaged=True):
        for f in sub.iterdir():
            if f.is_file() and (f.name.endswith(".npy") or f.name in ("meta.json", "seconds_per_item")
                                  or f.name.startswith(".tmp-")):
                freed += f.stat().st_size
                f.unlink(missing_ok=True)
        try:
            sub.rmdir()
        except OSError:
            pass  # not ours, or not empty
    for f in root.glob("files.sqlite*"):
        freed += f.stat().st_size
        f.unlink(missing_ok=True)
    return freed
