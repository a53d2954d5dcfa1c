"""The on-disk feature cache: hits are the same features without running the backbone, edits miss,
damaged or interrupted shards are never read."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.features import CountingNet, Tensorize, dataset
from transferkit.testing import make_image_folder
from transferkit.data import ImageDataset
from transferkit.models.feature_cache import FileDigests, cache_info, clear_cache, prune
from transferkit.models.features import extract_features

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    root = make_image_folder(tmp_path_factory.mktemp("cache") / "colours", per_class=6, size=32)
    return sorted(root.rglob("*.jpg"))


def test_hit_gives_identical_features_without_running_the_backbone(images, tmp_path):
    net = CountingNet()
    first, y1 = extract_features(net, dataset(images), batch_size=5, progress=False, cache=tmp_path)
    assert net._images == 2 * len(images)  # each image and its flip
    stats = {}
    again, y2 = extract_features(net, dataset(images), batch_size=7, progress=False, cache=tmp_path, stats=stats)
    assert net._images == 2 * len(images)  # not one more forward pass
    assert stats["cached"] == len(images) and stats["computed"] == 0
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(y1, y2)
    # without the cache: the same numbers, computed again
    plain, _ = extract_features(net, dataset(images), batch_size=5, progress=False, cache=False)
    np.testing.assert_allclose(plain, first, rtol=1e-6, atol=1e-7)
    info = cache_info(tmp_path)
    assert [m["rows"] for m in info["models"]] == [len(images)]
    assert clear_cache(tmp_path) > 0 and cache_info(tmp_path)["models"] == []


def test_other_weights_flip_or_preprocessing_miss(images, tmp_path):
    net = CountingNet()
    extract_features(net, dataset(images[:4]), progress=False, cache=tmp_path)
    extract_features(net, dataset(images[:4]), progress=False, cache=tmp_path, hflip=False)
    assert net._images == 4 * 2 + 4
    with torch.no_grad():
        net.conv.bias.add_(1.0)  # in place: the weights digest must notice
    extract_features(net, dataset(images[:4]), progress=False, cache=tmp_path)
    assert net._images == 4 * 2 + 4 + 4 * 2
    larger = ImageDataset(images[:4], [0] * 4, Tensorize(40), cache_side=40)
    extract_features(net, larger, progress=False, cache=tmp_path)
    assert net._images == 4 * 2 + 4 + 4 * 2 + 4 * 2
    assert len(cache_info(tmp_path)["models"]) == 4
    # pruning to a budget deletes shards, least recently used first: here all of them
    assert prune(tmp_path, max_bytes=0) > 0 and sum(m["rows"] for m in cache_info(tmp_path)["models"]) == 0
    stats = {}
    extract_features(net, larger, progress=False, cache=tmp_path, stats=stats)
    assert stats["computed"] == 4


def test_changed_file_changes_its_key_and_unchanged_files_are_not_reread(images, tmp_path):
    work = tmp_path / "imgs"
    work.mkdir()
    copies = []
    for p in images[:5]:
        copies.append(work / p.name)
        copies[-1].write_bytes(p.read_bytes())
        os.utime(copies[-1], (1.6e9, 1.6e9))  # written long before they are hashed: stat entries are trusted
    digests = FileDigests(tmp_path / "c")
    before = digests.digests(copies)
    assert digests.read == 5
    assert (digests.digests(copies) == before).all() and digests.read == 5  # from the index, no file read
    net = CountingNet()
    extract_features(net, dataset(copies), progress=False, cache=tmp_path / "c")
    data = bytearray(copies[2].read_bytes())
    data[-10] ^= 0xFF  # same size, other bytes, a new mtime (an ordinary edit)
    copies[2].write_bytes(bytes(data))
    after = digests.digests(copies)
    assert (before != after).tolist() == [False, False, True, False, False] and digests.read == 6
    stats = {}
    extract_features(net, dataset(copies), progress=False, cache=tmp_path / "c", stats=stats)
    assert (stats["cached"], stats["computed"]) == (4, 1)
    # a renamed copy hits (the key is the content, not the path); a Subset reads through, with its labels
    copies[0].rename(work / "renamed.jpg")
    copies[0] = work / "renamed.jpg"
    from torch.utils.data import Subset

    feats, labels = extract_features(net, Subset(dataset(copies), [4, 0]), progress=False, cache=tmp_path / "c",
                                     stats=stats)
    assert stats["cached"] == 2 and labels.tolist() == [4, 0]


def test_truncated_shard_is_skipped(images, tmp_path):
    net = CountingNet()
    first, _ = extract_features(net, dataset(images[:6]), progress=False, cache=tmp_path)
    (feats,) = list(tmp_path.rglob("*.feats.npy"))
    feats.write_bytes(feats.read_bytes()[:-16])  # a disk that lost the end of the file
    stats = {}
    again, _ = extract_features(net, dataset(images[:6]), progress=False, cache=tmp_path, stats=stats)
    assert stats["cached"] == 0 and stats["computed"] == 6
    np.testing.assert_allclose(again, first, rtol=1e-6, atol=1e-7)


KILLED = """
import os, signal, sys, torch
sys.path[:0] = [{src!r}, {repo!r}]
from tests.helpers.features import CountingNet, dataset
from transferkit.models import feature_cache
from transferkit.models.features import extract_features
feature_cache.SHARD_ROWS = 4  # a shard every 4 rows
paths = {paths!r}

class Dying(type(dataset(paths))):
    def __getitem__(self, index):
        if index == 9:  # the 10th image: two shards of 4 written, the third half gathered
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__getitem__(index)

d = dataset(paths)
d.__class__ = Dying
extract_features(CountingNet(), d, batch_size=2, progress=False, cache={cache!r})
"""


def test_killed_run_leaves_only_complete_shards(images, tmp_path):
    cache = tmp_path / "cache"
    paths = [str(p) for p in images[:14]]
    script = KILLED.format(src=str(REPO / "src"), repo=str(REPO), paths=paths, cache=str(cache))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert len(list(cache.rglob("*.keys.npy"))) == 2
    net = CountingNet()
    stats = {}
    feats, _ = extract_features(net, dataset(images[:14]), batch_size=2, progress=False, cache=cache, stats=stats)
    assert stats["cached"] == 8 and stats["computed"] == 6 and net._images == 2 * 6
    plain, _ = extract_features(CountingNet(), dataset(images[:14]), progress=False, cache=False)
    np.testing.assert_allclose(feats, plain, rtol=1e-6, atol=1e-7)


def test_image_cache_stops_at_its_budget(images):
    side = 32 * 32 * 3
    d = ImageDataset(images[:6], None, None, cache_side=32, cache_bytes=3 * side)
    for i in range(6):
        d[i]
    assert len(d._cache) == 3 and d._cache.bytes <= 3 * side
    assert d[0][0] is d[0][0]  # kept ones are served from memory
    off = ImageDataset(images[:2], None, None, cache_side=32, cache_bytes=0)
    off[0]
    assert len(off._cache) == 0
