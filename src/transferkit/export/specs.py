"""What an export does differently per task: the graph to trace, the model file's metadata, the run's
held-out examples, PyTorch's reference predictions, the score and the int8 method (one class per task,
looked up in `SPECS`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import TransferkitError
from ..rundir import CONFIG_FILE, SPLIT_FILE, read_json

#: Largest |Δprob| (classifiers) or relative error (forecasts) an fp32 export may show against PyTorch.
PARITY_TOLERANCE = 1e-4


class ExportError(TransferkitError):
    """An export that cannot be made or fails its check."""


def _evenly(n: int, limit: int) -> list[int]:
    """At most `limit` indices spread evenly over range(n)."""
    return sorted(set(np.linspace(0, n - 1, min(n, limit)).astype(int).tolist())) if n else []


class _TaskExport:
    """What differs between tasks: the graph, its metadata, held-out examples, the reference
    predictions, the score and the int8 method. One subclass per task, looked up in `SPECS`."""

    #: "static" (calibrated QDQ, for CNNs) or "dynamic" (transformers)
    quantization: ClassVar[str] = "dynamic"
    #: what `score` measures: "accuracy" (higher is better) or "mse" (lower is better)
    metric: ClassVar[str] = "accuracy"
    #: whether the graph can hold test-time augmentation (images: the flip average)
    takes_tta: ClassVar[bool] = False

    def __init__(self, est: Any, run_dir: Path, tta: bool | None) -> None:
        self.est, self.run_dir = est, run_dir
        if tta and not self.takes_tta:
            raise ExportError("--tta is for image runs (the flip average); leave it out.")
        self.tta = False

    def graph(self) -> tuple[Any, tuple, list[str], list[str], dict]:
        """(module to trace, example inputs, input names, output names, dynamic axes)."""
        raise NotImplementedError

    def metadata(self) -> dict:
        """The task's part of the model file's metadata: what the runtime needs besides the graph."""
        raise NotImplementedError

    def split(self, name: str) -> tuple[Any, Any]:
        """The run's recorded split `name` as (inputs, targets); empty when its data cannot be read."""
        raise NotImplementedError

    def reference(self, items: Any) -> list[np.ndarray]:
        """PyTorch's predictions of `items` (one array per graph output), as the estimator makes them."""
        raise NotImplementedError

    def onnx_outputs(self, predictor: Any, items: Any) -> list[np.ndarray]:
        """The exported model's predictions of `items` through `transferkit.runtime`."""
        raise NotImplementedError

    def score(self, outputs: list[np.ndarray], targets: Any) -> float:
        """The task's metric of `outputs` against `targets`."""
        raise NotImplementedError

    def subset(self, items: Any, targets: Any, indices: list[int]) -> tuple[Any, Any]:
        return [items[i] for i in indices], [targets[i] for i in indices]

    def calibration(self, limit: int) -> list[dict[str, np.ndarray]]:
        """Input feeds of at most `limit` training examples for static int8 (none for dynamic)."""
        return []

    def feeds(self, predictor: Any, items: Any) -> dict[str, np.ndarray]:
        """The exported graph's input feed for `items`, as `transferkit.runtime` builds it."""
        return predictor._feeds(list(items))

    def sample_feeds(self, predictor: Any, limit: int) -> list[dict[str, np.ndarray]]:
        """Feeds (batches of 8) of at most `limit` training examples, for the per-layer sensitivity."""
        items, targets = self.split("train")
        items, _ = self.subset(items, targets, _evenly(len(items), limit))
        return [self.feeds(predictor, items[i:i + 8]) for i in range(0, len(items), 8)]

    def parity(self, ref: list[np.ndarray], got: list[np.ndarray]) -> dict:
        """Max |Δprob| and top-1 agreement over every output (head)."""
        diffs = [float(np.abs(r - g).max()) if r.size else 0.0 for r, g in zip(ref, got)]
        agree = [float((r.argmax(1) == g.argmax(1)).mean()) if len(r) else 1.0 for r, g in zip(ref, got)]
        return {"max_abs_diff": max(diffs), "top1_agreement": min(agree)}

    def parity_ok(self, result: dict) -> bool:
        return result["max_abs_diff"] <= PARITY_TOLERANCE


class _ClassifierExport(_TaskExport):
    """Classification: the recorded splits (split.json) hold the inputs and class names."""

    def __init__(self, est: Any, run_dir: Path, tta: bool | None) -> None:
        super().__init__(est, run_dir, tta)
        from ..tasks.growth import recorded_splits

        self.splits = recorded_splits(est)
        self.heads = list(est.heads_) if est._multi_head() else []

    def split(self, name: str) -> tuple[list, list[int]]:
        refs, names = self.splits.get(name) or ([], [])
        index = {c: i for i, c in enumerate(self.est.classes_)}
        first = self.heads[0] if self.heads else None
        # a multi-task run records each example's classes per head: the first head's are scored
        names = [n.get(first) if isinstance(n, dict) else n for n in names]
        refs, labels = self.est._existing(refs, [index.get(c, -1) for c in names])
        return refs, labels

    def outputs(self) -> list[str]:
        return [f"probabilities.{h}" for h in self.heads] if self.heads else ["probabilities"]

    def _as_list(self, proba: Any) -> list[np.ndarray]:
        return [np.asarray(proba[h]) for h in self.heads] if isinstance(proba, dict) else [np.asarray(proba)]

    def reference(self, items: list) -> list[np.ndarray]:
        return self._as_list(self.est.predict_proba(self.est._inputs(items)))

    def onnx_outputs(self, predictor: Any, items: list) -> list[np.ndarray]:
        return self._as_list(predictor.predict_proba(items))

    def score(self, outputs: list[np.ndarray], targets: list[int]) -> float:
        return float((outputs[0].argmax(1) == np.asarray(targets)).mean()) if len(targets) else float("nan")

    def common(self) -> dict:
        return {"classes": list(self.est.classes_), "heads": dict(self.est.heads_) if self.heads else {}}


class _ImageExport(_ClassifierExport):
    quantization = "static"
    takes_tta = True

    def __init__(self, est: Any, run_dir: Path, tta: bool | None) -> None:
        super().__init__(est, run_dir, tta)
        self.tta = bool(est.tta if tta is None else tta)

    def graph(self):
        import torch

        from .graphs import ImageGraph, merged_copy, static_same_padding

        pre, size = self.est.preprocessing_, int(self.est.image_size_)
        model = static_same_padding(merged_copy(self.est.model_), torch.zeros(1, 3, size, size))
        module = ImageGraph(model, pre.mean, pre.std, self.tta, self.heads)
        outputs = self.outputs()
        return (module, (torch.rand(2, 3, size, size),), ["pixels"], outputs,
                {"pixels": {0: "batch"}, **{o: {0: "batch"} for o in outputs}})

    def metadata(self) -> dict:
        pre = self.est.preprocessing_
        return {**self.common(), "image": {
            "size": int(self.est.image_size_), "interpolation": pre.interpolation, "mean": list(pre.mean),
            "std": list(pre.std), "input": "float32 pixels in [0, 1], N×3×size×size (RGB), normalised in the graph",
            "resize": "shorter side to size (Pillow, the interpolation above; JPEGs drafted near size first)",
            "crop": "centre size×size"}}

    def reference(self, items: list) -> list[np.ndarray]:
        tta = self.est.tta
        self.est.tta = self.tta  # the estimator's prediction with the export's test-time augmentation
        try:
            return super().reference(items)
        finally:
            self.est.tta = tta

    def calibration(self, limit: int) -> list[dict[str, np.ndarray]]:
        from ..runtime.images import image_batch

        refs, _ = self.split("train")
        chosen = [refs[i] for i in _evenly(len(refs), limit)]
        size, interpolation = int(self.est.image_size_), self.est.preprocessing_.interpolation
        return [{"pixels": image_batch(chosen[i:i + 8], size, interpolation)} for i in range(0, len(chosen), 8)]


class _TextExport(_ClassifierExport):
    def graph(self):
        import torch

        from .graphs import TextGraph, merged_copy

        module = TextGraph(merged_copy(self.est.model_), self.heads)
        encoded = self.est.tokenizer_(["an example text for tracing", "a second one"], padding=True,
                                      return_tensors="pt")
        outputs = self.outputs()
        example = (encoded["input_ids"].to(torch.int64), encoded["attention_mask"].to(torch.int64))
        axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}}
        return module, example, ["input_ids", "attention_mask"], outputs, {**axes, **{o: {0: "batch"} for o in outputs}}

    def metadata(self) -> dict:
        tokenizer = self.est.tokenizer_
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ExportError(f"{self.run_dir}: the run's tokenizer has no tokenizer.json (a slow tokenizer); "
                              "export needs a fast tokenizer (transformers' AutoTokenizer with use_fast=True).")
        if tokenizer.pad_token_id is None:
            raise ExportError(f"{self.run_dir}: the run's tokenizer has no padding token; batches cannot be padded.")
        params = getattr(self.est, "text_column", None)
        return {**self.common(), "text": {
            "tokenizer": backend.to_str(), "max_length": int(self.est.preprocessing_.max_length),
            "pad_id": int(tokenizer.pad_token_id), "pad_token": str(tokenizer.pad_token), "text_column": params,
            "input": "input_ids and attention_mask, int64 N×T (T ≤ max_length), padded to the batch's longest text"}}


class _ForecastExport(_TaskExport):
    metric = "mse"

    def __init__(self, est: Any, run_dir: Path, tta: bool | None) -> None:
        super().__init__(est, run_dir, tta)
        config = read_json(run_dir / CONFIG_FILE, {"run": dict})
        self.config = config
        self.data = (config["run"].get("data") or {}).get("root")

    def graph(self):
        import torch

        from .graphs import ForecastGraph, merged_copy

        scaler = self.est.scaler_
        module = ForecastGraph(merged_copy(self.est.model_), scaler.mean.tolist(), scaler.std.tolist())
        example = torch.randn(2, int(self.est.lookback_), len(self.est.channels_))
        return (module, (example,), ["history"], ["forecast"], {"history": {0: "batch"}, "forecast": {0: "batch"}})

    def metadata(self) -> dict:
        source = self.config.get("source_series") or {}
        scaler = self.est.scaler_
        return {"classes": None, "heads": {}, "forecast": {
            "lookback": int(self.est.lookback_), "horizon": int(self.est.horizon_), "series": list(self.est.channels_),
            "frequency": source.get("frequency"), "time_column": self.est.time_column or source.get("time_column"),
            "target": self.est.target, "scaler": {"mean": scaler.mean.tolist(), "std": scaler.std.tolist()},
            "input": "float32 history N×lookback×series in the series' units; standardised and restored in the graph"}}

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        from ..data.timeseries import WindowDataset, load_series_csv

        if not self.data or not Path(self.data).is_file():
            return np.zeros((0,)), np.zeros((0,))
        record = read_json(self.run_dir / SPLIT_FILE, {name: list})
        table = load_series_csv(self.data, self.est.time_column, self.est.target)
        raw = table.values[:, [table.columns.index(c) for c in self.est.channels_]]
        x, y = WindowDataset(raw, self.est.lookback_, self.est.horizon_, *record[name]).arrays()
        return x.numpy(), y.numpy()

    def subset(self, items, targets, indices):
        return items[indices], targets[indices]

    def reference(self, items: np.ndarray) -> list[np.ndarray]:
        import torch

        scaler, model = self.est.scaler_, self.est.model_.eval()
        out = []
        with torch.inference_mode():
            for start in range(0, len(items), 256):
                z = torch.from_numpy(scaler.transform(items[start:start + 256]))
                out.append(scaler.inverse_transform(model(z).numpy()))
        return [np.concatenate(out)]

    def feeds(self, predictor: Any, items: np.ndarray) -> dict[str, np.ndarray]:
        return {predictor.session.get_inputs()[0].name: np.ascontiguousarray(items, dtype=np.float32)}

    def onnx_outputs(self, predictor: Any, items: np.ndarray) -> list[np.ndarray]:
        name = predictor.session.get_inputs()[0].name
        return [np.concatenate([predictor.session.run(None, {name: np.ascontiguousarray(items[i:i + 256])})[0]
                                for i in range(0, len(items), 256)])]

    def parity(self, ref, got) -> dict:
        r, g = ref[0], got[0]
        diff = float(np.abs(r - g).max()) if r.size else 0.0
        return {"max_abs_diff": diff, "relative_error": diff / max(float(np.abs(r).max()) if r.size else 1.0, 1e-12)}

    def parity_ok(self, result: dict) -> bool:
        return result["relative_error"] <= PARITY_TOLERANCE

    def score(self, outputs: list[np.ndarray], targets: np.ndarray) -> float:
        """MSE on the run's standardised scale (as the run's metrics)."""
        std = self.est.scaler_.std
        return float((((outputs[0] - targets) / std) ** 2).mean()) if len(targets) else float("nan")


SPECS: dict[str, type[_TaskExport]] = {"image-classification": _ImageExport, "text-classification": _TextExport,
                                       "forecast": _ForecastExport}
