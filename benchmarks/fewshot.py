"""Few-shot benchmark: flowers5 with K = 1, 5, 10 labelled images per class.

Features of every image are extracted once with the default offline backbone (EfficientNet-Lite0,
128 px, as the anchors were measured) and cached (`--cache`, not committed): each image's plain and
horizontally flipped view, so flip-averaged (the strategies' default, `tta`) and single-view
features come from one pass. The query set is fixed: the library's own stratified test split
(`load_image_folder(val_fraction=0.1, test_fraction=0.2, seed=0)`, as flowers5.py uses, 863
images); each episode samples K support images per class from the other 3,454 (seeded, the same
supports for every method, so differences are paired). Rows, on the same features:

- `simpleshot`: the `prototypes` strategy itself (`Prototypes.fit` on the cached features through an
  identity encoder: centred, L2-normalised nearest centroid, temperature by out-of-fold log-loss);
  at K = 1 there is nothing to cross-validate, so the strategy's `PrototypeHead` is set directly
  (the temperature does not change the predicted class);
- `lr_c1`: scikit-learn LogisticRegression(C=1) on raw features (the ANCHORS.md recipe, 0.585 at K=10);
- `lr_scaled_c0.01`: StandardScaler + LogisticRegression(C=0.01);
- `nearest_mean`: nearest class mean, Euclidean, on raw (un-centred, un-normalised) features;
- `linear_probe` (K ≥ 2): transferkit's linear probe as `auto` runs it on data this small
  (`cross_validated_head`: C by out-of-fold log-loss, fitted on all support images);
- `auto`: whichever of `simpleshot` and `linear_probe` has the higher out-of-fold accuracy on the
  support set, the rule `auto` applies (ties go to the probe).

Mean ± 95 % interval (1.96·std/√episodes) over the episodes; ratios against the anchor (10 shots,
Lite0 + LR: 0.585). `--variants` adds other feature sets (single view, 224 px, other backbones);
with `--subset POOL,QUERIES` only that many support candidates and queries per class are extracted
(seeded), and lite0-128 is rerun on the same images for a paired comparison. `--sst2` runs the text
variant instead: MiniLM embeddings of 4,000 SST-2 training phrases (support candidates) and the dev
set (queries), 8 and 16 shots. Results merge into benchmarks/results/fewshot.json (run them one
after another).

    OMP_NUM_THREADS=2 python benchmarks/fewshot.py [--episodes 100] [--shots 1,5,10]
    OMP_NUM_THREADS=2 python benchmarks/fewshot.py --no-probe --subset 40,100 --variants lite0-224,mobilenetv2-128,lite2-260
    OMP_NUM_THREADS=1 python benchmarks/fewshot.py --sst2
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "datasets" / "flowers5"
DEFAULT_CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / "transferkit-fewshot-cache"
ANCHOR = {"shots": 10, "accuracy": 0.585, "method": "frozen Lite0 features (128 px) + LogisticRegression(C=1)"}
GOAL = 0.70
#: variant → (backbone, input size in px, flip-averaged features)
VARIANTS = {
    "lite0-128": ("efficientnet_lite0", 128, True),
    "lite0-128-single-view": ("efficientnet_lite0", 128, False),
    "lite0-224": ("efficientnet_lite0", 224, True),
    "lite2-260": ("efficientnet_lite2", 260, True),
    "mobilenetv2-128": ("mobilenetv2_100", 128, True),
}
#: the text variant: SST-2, MiniLM sentence embeddings; anchors measured with LogisticRegression, 5 seeds
SST2_DATA = HERE.parent.parent / "shared" / "datasets" / "sentiment" / "sst2"
SST2_ANCHORS = {"8": 0.611, "16": 0.649}


class _Flipped(Dataset):
    """The items of `base` with the image flipped left-right (the flip `extract_features` averages over)."""

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        x, y = self.base[index]
        return torch.flip(x, dims=[2]), y


def subset_indices(labels: np.ndarray, is_query: np.ndarray, pool: int, queries: int) -> np.ndarray:
    """Indices of `pool` support candidates and `queries` query images per class (seeded, fixed),
    for feature sets too slow to extract for every image on a CPU."""
    rng = np.random.default_rng(0)
    chosen = []
    for c in np.unique(labels):
        for mask, n in ((~is_query, pool), (is_query, queries)):
            chosen.append(rng.permutation(np.flatnonzero(mask & (labels == c)))[:n])
    return np.sort(np.concatenate(chosen))


def cached_features(data_root: Path, backbone_name: str, size: int, cache: Path,
                    subset: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """Plain and flipped features of every image of the fixed split (or of `subset_indices`),
    extracted once and cached."""
    from transferkit.backbones import create_backbone
    from transferkit.data import ImageDataset, eval_transform, load_image_folder
    from transferkit.models.features import extract_features

    tag = f"_subset{subset[0]}-{subset[1]}" if subset else ""
    file = cache / f"flowers5_{backbone_name}_{size}px{tag}.npz"
    if file.is_file():
        return dict(np.load(file))
    whole = cache / f"flowers5_{backbone_name}_{size}px.npz"
    if subset and whole.is_file():  # the subset of features already extracted for every image
        out = dict(np.load(whole))
        keep = subset_indices(out["labels"], out["is_query"], *subset)
        return {**{k: out[k][keep] for k in ("plain", "flipped", "labels", "is_query")},
                "extract_seconds": out["extract_seconds"] * len(keep) / len(out["labels"]), "classes": out["classes"]}
    data = load_image_folder(data_root, val_fraction=0.1, test_fraction=0.2, seed=0)
    pool_paths = data.train.paths + data.val.paths
    paths, labels = pool_paths + data.test.paths, data.train.labels + data.val.labels + data.test.labels
    is_query = np.arange(len(paths)) >= len(pool_paths)
    if subset:
        keep = subset_indices(np.asarray(labels), is_query, *subset)
        paths, labels, is_query = [paths[i] for i in keep], [labels[i] for i in keep], is_query[keep]
    backbone = create_backbone(backbone_name, modality="image")
    dataset = ImageDataset(paths, labels, eval_transform(backbone.preprocessing, size), cache_side=size)
    start = time.perf_counter()
    plain, y = extract_features(backbone.model, dataset, hflip=False, description="plain")
    flipped, _ = extract_features(backbone.model, _Flipped(dataset), hflip=False, description="flipped")
    seconds = time.perf_counter() - start
    out = {"plain": plain, "flipped": flipped, "labels": y, "is_query": is_query,
           "extract_seconds": np.array(seconds), "classes": np.array(data.classes)}
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(file, **out)
    print(f"extracted {len(y)} images × 2 views ({backbone_name}, {size} px) in {seconds:.0f} s → {file}", flush=True)
    return out


def sst2_features(data_root: Path, cache: Path, pool: int = 4000) -> dict[str, np.ndarray]:
    """MiniLM sentence embeddings (the default offline text encoder) of `pool` SST-2 training phrases
    (seeded uniform draw: the support candidates) and of the whole dev set (the queries), cached."""
    from transferkit.backbones import create_backbone
    from transferkit.data import TextDataset, TokenCollator
    from transferkit.models.features import extract_features

    file = cache / f"sst2_minilm_pool{pool}.npz"
    if file.is_file():
        return dict(np.load(file))

    def read(name: str) -> tuple[list[str], list[int]]:
        rows = [line.split("\t") for line in (data_root / name).read_text(encoding="utf-8").splitlines()[1:]]
        return [r[1] for r in rows], [int(r[0]) for r in rows]

    train_texts, train_labels = read("train.tsv")
    chosen = np.random.default_rng(0).choice(len(train_texts), pool, replace=False)
    dev_texts, dev_labels = read("dev.tsv")
    texts = [train_texts[i] for i in chosen] + dev_texts
    labels = [train_labels[i] for i in chosen] + dev_labels
    is_query = np.arange(len(texts)) >= pool
    backbone = create_backbone("all-minilm-l6-v2", modality="text")
    dataset, order = TextDataset.by_length(texts, labels)
    start = time.perf_counter()
    x, y = extract_features(backbone.model, dataset, hflip=False, description="sentences",
                            collate_fn=TokenCollator(backbone.tokenizer, backbone.preprocessing.max_length))
    seconds = time.perf_counter() - start
    out = {"plain": x, "labels": y, "is_query": is_query[order], "extract_seconds": np.array(seconds),
           "classes": np.array(["negative", "positive"])}
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(file, **out)
    print(f"encoded {len(y)} sentences in {seconds:.0f} s → {file}", flush=True)
    return out


def _identity_encoder(width: int) -> nn.Module:
    """An identity layer with parameters (feature extraction reads their device): cached features in, out."""
    encoder = nn.Linear(width, width)
    with torch.no_grad():
        encoder.weight.copy_(torch.eye(width))
        encoder.bias.zero_()
    encoder.num_features = width
    return encoder


def simpleshot(sx: np.ndarray, sy: np.ndarray, qx: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, float | None]:
    """Query predictions of the `prototypes` strategy fitted on the support set, and its out-of-fold estimate."""
    from transferkit.models import TransferModel
    from transferkit.strategies import FitData, TrainSettings, create_strategy
    from transferkit.strategies.prototypes import PrototypeHead, _centroids

    tx, ty = torch.as_tensor(sx), torch.as_tensor(sy)
    if np.bincount(sy).min() < 2:  # one shot: nothing to cross-validate; the strategy's head, set directly
        head = PrototypeHead(sx.shape[1], k)
        mean = tx.mean(0)
        head.set_prototypes(mean, _centroids(tx, ty, k, mean), 1.0)
        with torch.no_grad():
            return head(torch.as_tensor(qx)).argmax(1).numpy(), None
    data = FitData(train=TensorDataset(tx, ty), train_plain=TensorDataset(tx, ty),
                   val=TensorDataset(tx[:0], ty[:0]), num_classes=k, folds=5)
    model = TransferModel(_identity_encoder(sx.shape[1]), nn.Linear(sx.shape[1], k))
    outcome = create_strategy("prototypes").fit(model, data, TrainSettings(progress=False, tta=False, seed=seed))
    model.eval()
    with torch.no_grad():
        predicted = model(torch.as_tensor(qx)).argmax(1).numpy()
    return predicted, outcome.settings["estimated_accuracy"]


def linear_probe(sx: np.ndarray, sy: np.ndarray, qx: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, float]:
    """Query predictions of transferkit's cross-validated logistic probe and its out-of-fold accuracy."""
    from threadpoolctl import threadpool_limits

    from transferkit.strategies.linear_probe import cross_validated_head

    with threadpool_limits(1):
        head, _, _, oof = cross_validated_head(sx, sy, k, seed)
    with torch.no_grad():
        predicted = head(torch.as_tensor(qx)).argmax(1).numpy()
    return predicted, float((oof.argmax(1) == sy).mean())


def sklearn_rows(sx: np.ndarray, sy: np.ndarray, qx: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(sx)
    means = np.stack([sx[sy == c].mean(0) for c in np.unique(sy)])
    return {
        "lr_c1": LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(sx, sy).predict(qx),
        "lr_scaled_c0.01": LogisticRegression(C=0.01, max_iter=2000, random_state=seed)
        .fit(scaler.transform(sx), sy).predict(scaler.transform(qx)),
        "nearest_mean": ((qx[:, None, :] - means[None]) ** 2).sum(-1).argmin(1),
    }


def interval(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, float)
    half = 1.96 * a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else float("nan")
    return {"mean": float(a.mean()), "ci95": float(half), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
            "episodes": len(a)}


def run_variant(features: dict[str, np.ndarray], flip: bool, shots: list[int], episodes: int, seed: int,
                with_probe: bool) -> dict:
    x = ((features["plain"] + features["flipped"]) / 2 if flip else features["plain"]).astype(np.float32)
    assert np.isfinite(x).all()
    y, is_query = features["labels"].astype(int), features["is_query"].astype(bool)
    k = int(y.max()) + 1
    qx, qy = x[is_query], y[is_query]
    pool = np.flatnonzero(~is_query)
    out = {}
    for shot in shots:
        rng = np.random.default_rng([seed, shot])
        acc: dict[str, list[float]] = {}
        chose_prototypes, oof = 0, {"simpleshot": [], "linear_probe": []}
        start = time.perf_counter()
        for _ in range(episodes):
            support = np.concatenate([rng.choice(pool[y[pool] == c], shot, replace=False) for c in range(k)])
            sx, sy = x[support], y[support]
            predicted = sklearn_rows(sx, sy, qx, seed)
            predicted["simpleshot"], proto_oof = simpleshot(sx, sy, qx, k, seed)
            if with_probe and shot >= 2:
                predicted["linear_probe"], probe_oof = linear_probe(sx, sy, qx, k, seed)
                keep = proto_oof > probe_oof
                chose_prototypes += keep
                predicted["auto"] = predicted["simpleshot"] if keep else predicted["linear_probe"]
                oof["simpleshot"].append(proto_oof)
                oof["linear_probe"].append(probe_oof)
            for name, p in predicted.items():
                acc.setdefault(name, []).append(float((p == qy).mean()))
        row = {name: interval(values) for name, values in acc.items()}
        if "simpleshot" in acc and "lr_c1" in acc:
            row["simpleshot_minus_lr_c1"] = interval(np.subtract(acc["simpleshot"], acc["lr_c1"]).tolist())
        if "auto" in acc:  # paired: what auto's comparison gains over always keeping the probe
            row["auto_minus_linear_probe"] = interval(np.subtract(acc["auto"], acc["linear_probe"]).tolist())
        if oof["simpleshot"]:
            row["auto_chose_prototypes"] = chose_prototypes / episodes
            row["out_of_fold_accuracy"] = {m: interval(v) for m, v in oof.items()}
        row["seconds"] = time.perf_counter() - start
        out[str(shot)] = row
        print(f"  {shot:2d} shots: " + "  ".join(f"{m} {r['mean']:.3f}±{r['ci95']:.3f}" for m, r in row.items()
                                                 if isinstance(r, dict) and "mean" in r and "minus" not in m)
              + (f"  (auto kept prototypes in {row['auto_chose_prototypes']:.0%})" if "auto_chose_prototypes" in row
                 else ""), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--shots", default="1,5,10")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default="lite0-128", help=f"any of {', '.join(VARIANTS)}")
    parser.add_argument("--subset", default=None, metavar="POOL,QUERIES",
                        help="per class: support candidates and query images (seeded), for slow feature sets; "
                             "lite0-128 is rerun on the same subset for a paired comparison")
    parser.add_argument("--sst2", action="store_true", help="run the SST-2 text variant (MiniLM) only")
    parser.add_argument("--sst2-shots", default="8,16")
    parser.add_argument("--no-probe", action="store_true", help="skip the (slower) cross-validated probe and auto rows")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "fewshot.json")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results.update({
        "data": str(args.data), "anchor": ANCHOR, "goal": GOAL,
        "query_set": "the fixed stratified test split of load_image_folder(val_fraction=0.1, test_fraction=0.2, "
                     "seed=0); supports sampled from the other images",
        "episodes": args.episodes, "seed": args.seed,
        "episode_rng": "numpy default_rng([seed, shots]); the same supports for every method",
        "interval": "mean ± 1.96·std/√episodes", "threads": torch.get_num_threads()})
    results.setdefault("variants", {})
    shots = [int(s) for s in args.shots.split(",")]
    subset = tuple(int(n) for n in args.subset.split(",")) if args.subset else None
    names = args.variants.split(",")
    reference = f"lite0-128 (subset {subset[0]} support candidates, {subset[1]} queries per class)" if subset else ""
    if subset and "lite0-128" not in names and reference not in results["variants"]:
        names.insert(0, "lite0-128")  # the reference on the same images (unless already in --out)
    if args.sst2:
        features = sst2_features(SST2_DATA, args.cache)
        print("sst2-minilm: all-MiniLM-L6-v2 sentence embeddings, SST-2 dev as queries", flush=True)
        rows = run_variant(features, False, [int(s) for s in args.sst2_shots.split(",")], args.episodes, args.seed,
                           not args.no_probe)
        results["sst2"] = {"backbone": "all-minilm-l6-v2", "support_candidates": "4,000 SST-2 training phrases "
                           "(seeded uniform draw)", "queries": "SST-2 dev (872)",
                           "anchors_lr_5_seeds": SST2_ANCHORS, "extract_seconds": float(features["extract_seconds"]),
                           "note": "the auto row is the rule auto applies to images (prototypes vs the probe, out of "
                                   "fold); on text, auto runs SetFit up to 16 examples per class (see sst2.py)",
                           "shots": rows}
        for shot, anchor in SST2_ANCHORS.items():
            if shot in rows:
                print(f"    SST-2 {shot} shots: " + "  ".join(
                    f"{m} {rows[shot][m]['mean']:.3f} ({rows[shot][m]['mean'] / anchor:.2f} × {anchor})"
                    for m in ("simpleshot", "lr_c1", "auto") if m in rows[shot]))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        names = []  # --sst2 runs the text variant only
    for name in names:
        if "+" in name:  # an ensemble: each backbone's features scaled to unit mean norm, then concatenated
            parts = [VARIANTS[n] for n in name.split("+")]
            loaded = [cached_features(args.data, b, z, args.cache, subset) for b, z, _ in parts]
            features = {**loaded[0], "extract_seconds": sum(f["extract_seconds"] for f in loaded)}
            for view in ("plain", "flipped"):
                features[view] = np.concatenate(
                    [f[view] / np.linalg.norm(f[view], axis=1).mean() for f in loaded], axis=1)
            backbone, size, flip = "+".join(b for b, _, _ in parts), "/".join(str(z) for _, z, _ in parts), True
        else:
            backbone, size, flip = VARIANTS[name]
            features = cached_features(args.data, backbone, size, args.cache, subset)
        key = name + (f" (subset {subset[0]} support candidates, {subset[1]} queries per class)" if subset else "")
        print(f"{key}: {backbone} {size} px, {'flip-averaged' if flip else 'single-view'} features", flush=True)
        rows = run_variant(features, flip, shots, args.episodes, args.seed, not args.no_probe)
        results["variants"][key] = {"backbone": backbone, "image_size": size, "flip_averaged": flip,
                                     "extract_seconds": float(features["extract_seconds"]),
                                     "images": int(len(features["labels"])),
                                     "queries": int(features["is_query"].sum()), "shots": rows}
        anchor_row = rows.get(str(ANCHOR["shots"]))
        if anchor_row:
            for method in ("simpleshot", "lr_c1", "lr_scaled_c0.01", "nearest_mean", "linear_probe", "auto"):
                if method in anchor_row:
                    m = anchor_row[method]["mean"]
                    print(f"    {ANCHOR['shots']} shots {method:16s} {m:.3f} = {m / ANCHOR['accuracy']:.2f} × anchor "
                          f"{ANCHOR['accuracy']}, {'meets' if m >= GOAL else 'below'} the {GOAL} goal")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
