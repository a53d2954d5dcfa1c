"""`OnnxPredictor`: a model exported by `transferkit export`, run with onnxruntime alone.

The model file is self-contained: its `metadata_props` hold, under the key `transferkit`, one JSON
object with everything needed besides the graph (task, classes, input size and resizing,
tokenizer, lookback and series, the run's metrics and the export's parity check). Predictions
come in the same shapes as the estimator's (`predict --json`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

import numpy as np

from .._format import Streamed, Table, chunked, classification_records, classification_table, forecast_table
from ..errors import DataError, MissingDependencyError, TransferkitError

#: The metadata_props key of an exported model's JSON description, and the format it is written in.
METADATA_KEY = "transferkit"
METADATA_FORMAT = 1


class ModelFileError(TransferkitError):
    """A file given as an exported model is missing, is no ONNX model, or was not written by `transferkit export`."""


def read_metadata(session: Any, path: Path) -> dict:
    """The `transferkit` JSON object of a loaded session's model, or one line saying why there is none."""
    props = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in props:
        raise ModelFileError(f"{path}: an ONNX model without transferkit metadata (not written by `transferkit "
                             "export`); export the run with `transferkit export RUN`.")
    try:
        meta = json.loads(props[METADATA_KEY])
    except json.JSONDecodeError:
        raise ModelFileError(f"{path}: its transferkit metadata is not valid JSON; export the run again.") from None
    if (PREDICTORS.get(meta.get("task")) if isinstance(meta, dict) else None) is None:
        raise ModelFileError(f"{path}: transferkit metadata names no known task; export the run again with this version.")
    if int(meta.get("format", 0)) > METADATA_FORMAT:
        raise ModelFileError(f"{path}: written by a newer transferkit (metadata format {meta.get('format')}); "
                             "upgrade transferkit to run it.")
    return meta


def open_session(path: str | Path, threads: int | None = None) -> Any:
    """An onnxruntime CPU session of the model file at `path`; a missing or unreadable file raises one line."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingDependencyError("running an exported model needs onnxruntime: pip install "
                                     "onnxruntime (transferkit's [runtime] extra)") from None
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file; pass a model written by `transferkit export`.")
    options = ort.SessionOptions()
    options.log_severity_level = 4  # onnxruntime's own log lines are not the user's business: errors raise
    if threads:
        options.intra_op_num_threads = int(threads)
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... for a bad file
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:160]
        raise ModelFileError(f"{path}: not a readable ONNX model ({reason}); pass a model written by "
                             "`transferkit export`.") from None


class OnnxPredictor:
    """An exported model with its metadata: `predict_proba`/`predict` (classifiers) or `forecast`,
    and the CLI's hooks (`read_prediction_inputs`, `prediction_records`, `prediction_table`).

    `OnnxPredictor.load(path)` returns the task's subclass. `info` holds the task, classes,
    backbone, strategy, the run's test metrics, the run's name, the precision ("fp32"/"int8")
    and the export's parity check.
    """

    task: ClassVar[str] = ""
    prediction_key: ClassVar[str] = "input"

    def __init__(self, session: Any, meta: dict, path: Path) -> None:
        self.session, self.meta, self.path = session, meta, path
        self.classes: list[str] | None = meta.get("classes")
        self.heads: dict[str, list[str]] = dict(meta.get("heads") or {})
        self.outputs: list[str] = [o.name for o in session.get_outputs()]
        self.info: dict = {k: meta.get(k) for k in ("task", "classes", "heads", "backbone", "strategy", "metrics",
                                                     "run", "precision", "parity", "tta", "created")}

    @classmethod
    def load(cls, path: str | Path, threads: int | None = None) -> "OnnxPredictor":
        """The predictor of a model file written by `transferkit export` (the subclass of its task)."""
        path = Path(path).expanduser()
        session = open_session(path, threads)
        meta = read_metadata(session, path)
        return PREDICTORS[meta["task"]](session, meta, path)

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, feeds)

    def read_prediction_inputs(self, inputs: list[str], file: Path | None) -> Any:
        """What `transferkit predict model.onnx INPUTS... [--file FILE]` predicts (as the estimator reads it)."""
        raise NotImplementedError

    def prediction_records(self, items: Any, top_k: int) -> list[dict]:
        """JSON-ready predictions of `items`, in the shape of the estimator's `predict --json`."""
        raise NotImplementedError

    def prediction_table(self, items: Any, records: list[dict]) -> Table:
        """`records` as the table `transferkit predict` prints."""
        raise NotImplementedError

    def prediction_chunks(self, items: Any, size: int) -> Iterator[Any]:
        """`items` in pieces for `prediction_records`, one at a time (as the estimator's); one piece by default."""
        yield items


class _Classifier(OnnxPredictor):
    """Classifiers: one probability output per head (softmax inside the graph)."""

    batch_size: ClassVar[int] = 64

    def _feeds(self, items: Sequence[Any]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _items(self, items: Any) -> list:
        return list(items)

    def predict_proba(self, items: Any) -> np.ndarray | dict[str, np.ndarray]:
        """Class probabilities, one row per input (a multi-task model: a dict head → probabilities)."""
        items = self._items(items)
        chunks = [self._run(self._feeds(items[i:i + self.batch_size])) for i in range(0, len(items), self.batch_size)]
        names = list(self.heads) if self.heads else [None]
        out = {}
        for n, head in enumerate(names):
            width = len(self.heads[head]) if head else len(self.classes or [])
            out[head] = np.concatenate([c[n] for c in chunks]) if chunks else np.zeros((0, width), np.float32)
        return out if self.heads else out[None]

    def predict(self, items: Any) -> list[str] | dict[str, list[str]]:
        """The best class of each input (a multi-task model: a dict head → class names)."""
        proba = self.predict_proba(items)
        if isinstance(proba, dict):
            return {h: [self.heads[h][i] for i in p.argmax(1)] for h, p in proba.items()}
        return [self.classes[i] for i in proba.argmax(1)]

    def _name(self, item: Any, n: int) -> str:
        return str(item)

    def prediction_records(self, items: Any, top_k: int) -> list[dict]:
        """{key: input, "label", "top_k": [{"label", "probability"}, ...]} per input; a multi-task model
        adds "heads": {head: {"label", "top_k"}} ("label" and "top_k" are the first head's)."""
        items = self._items(items)
        proba = self.predict_proba(items)
        names = [self._name(item, n) for n, item in enumerate(items)]
        return classification_records(names, proba, self.classes, self.heads, top_k, self.prediction_key)

    def prediction_table(self, items: Any, records: list[dict]) -> Table:
        return classification_table(self.prediction_key, records)

    def prediction_chunks(self, items: Any, size: int) -> Iterator[list]:
        return chunked(items, size)


class ImagePredictor(_Classifier):
    """An exported image classifier: files (folders expanded) or PIL images in, decoded and resized
    as the estimator does (`runtime.images`); pixels in [0, 1] go in, normalised inside the graph."""

    task = "image-classification"
    prediction_key = "path"
    batch_size = 32

    @property
    def image_size(self) -> int:
        return int(self.meta["image"]["size"])

    def _items(self, items: Any) -> list:
        from PIL import Image

        from .images import expand_image_paths

        items = [items] if isinstance(items, (str, Path, Image.Image)) else list(items)
        out: list = []
        for item in items:  # PIL images as they are, paths with folders expanded
            out.extend([item] if isinstance(item, Image.Image) else expand_image_paths([item]))
        return out

    def _feeds(self, items: Sequence[Any]) -> dict[str, np.ndarray]:
        from .images import image_batch

        image = self.meta["image"]
        return {self.session.get_inputs()[0].name: image_batch(items, self.image_size, image["interpolation"])}

    def _name(self, item: Any, n: int) -> str:
        if isinstance(item, (str, Path)):
            return str(item)
        return getattr(item, "filename", "") or f"image {n + 1}"

    def read_prediction_inputs(self, inputs: list[str], file: Path | None) -> list[Path]:
        """The image files given, folders expanded to the images inside."""
        from .images import expand_image_paths

        if file is not None:
            raise DataError("--file is for text models; pass image files or folders as arguments.")
        paths = expand_image_paths(inputs)
        if not paths:
            raise DataError("nothing to predict: pass inputs as arguments")
        return paths


class TextPredictor(_Classifier):
    """An exported text classifier: texts in, tokenised by the run's own tokenizer (`runtime.text`)."""

    task = "text-classification"
    prediction_key = "text"

    def __init__(self, session: Any, meta: dict, path: Path) -> None:
        super().__init__(session, meta, path)
        from .text import TokenEncoder

        text = meta["text"]
        self.encoder = TokenEncoder(text["tokenizer"], text["max_length"], text["pad_id"], text["pad_token"])

    def _items(self, items: Any) -> list:
        from .text import check_texts

        return check_texts([items] if isinstance(items, str) else list(items))

    def _feeds(self, items: Sequence[str]) -> dict[str, np.ndarray]:
        return self.encoder(items)

    def read_prediction_inputs(self, inputs: list[str], file: Path | None) -> list[str] | Streamed:
        """The texts given as arguments, then those of `file`, read lazily in pieces."""
        from .text import iter_texts

        if file is None:
            if not inputs:
                raise DataError("nothing to predict: pass inputs as arguments or --file")
            return list(inputs)
        pieces = iter_texts(file, self.meta["text"].get("text_column"))
        first = next(pieces, [])
        if not inputs and not first:
            raise DataError(f"{file}: no texts to predict; the file is empty.")
        return Streamed(list(inputs) + first, pieces)


class ForecastPredictor(OnnxPredictor):
    """An exported forecaster: the last `lookback` steps of the series in their own units in, the
    next `horizon` steps out (the run's standardisation is inside the graph)."""

    task = "forecast"
    prediction_key = "time"

    @property
    def series(self) -> list[str]:
        return list(self.meta["forecast"]["series"])

    def forecast(self, history: str | Path | np.ndarray) -> np.ndarray:
        """The next `horizon` steps after the end of `history` (a CSV path, or an array (T, C) in the
        series' units): shape (horizon, C)."""
        from .series import read_history

        spec = self.meta["forecast"]
        lookback = int(spec["lookback"])
        if isinstance(history, (str, Path)):
            values = read_history(history, self.series, spec.get("time_column")).values
        else:
            values = np.asarray(history, dtype=np.float32)
            values = values[:, None] if values.ndim == 1 else values
            if values.ndim != 2 or values.shape[1] != len(self.series):
                raise DataError(f"history has {values.shape[-1]} series; the model forecasts {len(self.series)} "
                                f"({', '.join(self.series)}).")
        if len(values) < lookback:
            raise DataError(f"history has {len(values)} steps; the model needs the last {lookback}.")
        window = np.ascontiguousarray(values[-lookback:], dtype=np.float32)[None]
        return self._run({self.session.get_inputs()[0].name: window})[0][0]

    predict = forecast

    def read_prediction_inputs(self, inputs: list[str], file: Path | None) -> Path:
        """The one CSV of history to forecast from."""
        if len(inputs) != 1 or file is not None:
            raise DataError("a forecast model takes one CSV of history: transferkit predict model.onnx history.csv")
        return Path(inputs[0])

    def prediction_records(self, items: Path, top_k: int) -> list[dict]:
        """{"time": ..., series: value, ...} per forecast step, timestamped from the history's last
        time at the recorded frequency (else "+1", "+2"...)."""
        from .series import read_history, step_times

        spec = self.meta["forecast"]
        history = read_history(items, self.series, spec.get("time_column"))
        forecast = self.forecast(history.values)
        steps = step_times(history.last_time, spec.get("frequency"), len(forecast))
        return [{"time": t, **{c: round(float(v), 6) for c, v in zip(self.series, row)}}
                for t, row in zip(steps, forecast)]

    def prediction_table(self, items: Path, records: list[dict]) -> Table:
        return forecast_table(self.series, records, Path(items).name)


#: task name (as `transferkit.tasks.TASKS` names it) → predictor class
PREDICTORS: dict[str, type[OnnxPredictor]] = {cls.task: cls for cls in (ImagePredictor, TextPredictor, ForecastPredictor)}
