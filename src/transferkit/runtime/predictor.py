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


#: Keys every exported model's metadata may have, with their types when given (the task's own keys
#: are its predictor's `metadata_schema`).
METADATA_OPTIONAL: dict[str, Any] = {"format": int, "run": str, "backbone": str, "strategy": str, "metrics": dict,
                                     "precision": str, "parity": dict, "tta": str, "created": str}
#: Most bytes of metadata read (a tokenizer of a large vocabulary is a few MB).
METADATA_MAX_BYTES = 64 * 2**20


def read_metadata(session: Any, path: Path) -> dict:
    """The `transferkit` JSON object of a loaded session's model, checked against its task's schema
    (`OnnxPredictor.metadata_problem`), or one `ModelFileError` line saying why it cannot be used."""
    from ..safe_json import JsonProblem, parse_json, schema_problem

    props = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in props:
        raise ModelFileError(f"{path}: an ONNX model without transferkit metadata (not written by `transferkit "
                             "export`); export the run with `transferkit export RUN`.")
    try:
        meta = parse_json(props[METADATA_KEY], max_bytes=METADATA_MAX_BYTES)
    except JsonProblem as exc:
        raise ModelFileError(f"{path}: its transferkit metadata is not valid JSON ({exc}); export the run again.") from None
    task = meta.get("task") if isinstance(meta, dict) else None
    if not isinstance(task, str) or PREDICTORS.get(task) is None:
        raise ModelFileError(f"{path}: transferkit metadata names no known task; export the run again with this version.")
    problem = schema_problem(meta, {}, optional=METADATA_OPTIONAL)
    if problem is None and (meta.get("format") or 0) > METADATA_FORMAT:
        raise ModelFileError(f"{path}: written by a newer transferkit (metadata format {meta.get('format')}); "
                             "upgrade transferkit to run it.")
    problem = problem or PREDICTORS[task].metadata_problem(meta, session)
    if problem:
        raise ModelFileError(f"{path}: damaged transferkit metadata: {problem}; export the run again "
                             "(`transferkit export RUN`).")
    return meta


def _output_width(session: Any, n: int) -> int | None:
    """The last dimension of the model's output `n` when it is fixed (a number), else None."""
    outputs = session.get_outputs()
    shape = outputs[n].shape if n < len(outputs) else None
    return shape[-1] if shape and isinstance(shape[-1], int) else None


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
    #: The keys the task's metadata must have, with their types (`safe_json.schema_problem`).
    metadata_schema: ClassVar[dict[str, Any]] = {}

    @classmethod
    def metadata_problem(cls, meta: dict, session: Any) -> str | None:
        """The first way `meta` cannot drive this predictor over `session`'s graph ("'image.size'
        must be at least 1, not 0"), or None: the schema's types, then the values' sense."""
        from ..safe_json import schema_problem

        return schema_problem(meta, cls.metadata_schema)

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

    @classmethod
    def metadata_problem(cls, meta: dict, session: Any) -> str | None:
        problem = super().metadata_problem(meta, session)
        if problem:
            return problem
        heads, classes = meta.get("heads") or {}, meta.get("classes")
        if not isinstance(heads, dict) or not all(isinstance(v, list) and v and all(isinstance(c, str) for c in v)
                                                  for v in heads.values()):
            return "'heads' must map each head's name to its list of class names"
        if not heads and not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
            return f"'classes' must be a non-empty list of class names, not {json.dumps(classes)[:40]}"
        names = list(heads.values()) if heads else [classes]
        if len(session.get_outputs()) < len(names):
            return f"{len(names)} heads listed, but the graph has {len(session.get_outputs())} outputs"
        for n, listed in enumerate(names):
            width = _output_width(session, n)
            if width is not None and width != len(listed):
                return f"{len(listed)} class names for an output of {width} probabilities"
        return None

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
    metadata_schema = {"image": {"size": int, "interpolation": str}}

    @classmethod
    def metadata_problem(cls, meta: dict, session: Any) -> str | None:
        problem = super().metadata_problem(meta, session)
        if problem is None and not 1 <= meta["image"]["size"] <= 8192:
            problem = f"'image.size' must be between 1 and 8192 pixels, not {meta['image']['size']}"
        return problem

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
    metadata_schema = {"text": {"tokenizer": str, "max_length": int, "pad_id": int, "pad_token": str}}

    @classmethod
    def metadata_problem(cls, meta: dict, session: Any) -> str | None:
        from ..safe_json import JsonProblem, parse_json

        problem = super().metadata_problem(meta, session)
        if problem:
            return problem
        text = meta["text"]
        if not 1 <= text["max_length"] <= 1_000_000:
            return f"'text.max_length' must be between 1 and 1000000 tokens, not {text['max_length']}"
        if text["pad_id"] < 0:
            return f"'text.pad_id' must be at least 0, not {text['pad_id']}"
        if text.get("text_column") is not None and not isinstance(text["text_column"], str):
            return "'text.text_column' must be a string or null"
        try:
            tokenizer = parse_json(text["tokenizer"], max_bytes=METADATA_MAX_BYTES)
        except JsonProblem as exc:
            return f"'text.tokenizer' is not a tokenizer.json ({exc})"
        if not isinstance(tokenizer, dict) or not isinstance(tokenizer.get("model"), dict):
            return "'text.tokenizer' is not a tokenizer.json (no 'model' object)"
        return None

    def __init__(self, session: Any, meta: dict, path: Path) -> None:
        super().__init__(session, meta, path)
        from .text import TokenEncoder

        text = meta["text"]
        try:
            self.encoder = TokenEncoder(text["tokenizer"], text["max_length"], text["pad_id"], text["pad_token"])
        except (ValueError, TypeError, OverflowError) as exc:  # the tokenizers library's own "Exception" is caught below
            raise ModelFileError(f"{path}: damaged transferkit metadata: the tokenizer cannot be built "
                                 f"({type(exc).__name__}); export the run again.") from None
        except Exception as exc:  # tokenizers raises a bare Exception for a tokenizer.json it cannot read
            if isinstance(exc, TransferkitError):
                raise
            raise ModelFileError(f"{path}: damaged transferkit metadata: the tokenizer cannot be built "
                                 f"({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}); "
                                 "export the run again.") from None

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
    metadata_schema = {"forecast": {"lookback": int, "horizon": int, "series": list[str]}}

    @classmethod
    def metadata_problem(cls, meta: dict, session: Any) -> str | None:
        from ..safe_json import schema_problem

        problem = super().metadata_problem(meta, session)
        if problem:
            return problem
        spec = meta["forecast"]
        problem = schema_problem(spec, {}, "forecast", optional={"frequency": str, "time_column": str})
        if problem:
            return problem
        for key in ("lookback", "horizon"):
            if not 1 <= spec[key] <= 10_000_000:
                return f"'forecast.{key}' must be at least 1, not {spec[key]}"
        if not spec["series"]:
            return "'forecast.series' must name at least one series"
        width = _output_width(session, 0)
        if width is not None and width != len(spec["series"]):
            return f"{len(spec['series'])} series named for an output of {width}"
        return None

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
