"""The prediction server: a FastAPI app over a run directory or an exported `.onnx` file.

Endpoints: POST /predict, GET /health (liveness), /ready (model loaded and warmed), /info (what the
model is), /stats (the micro-batcher's counts), the page at / (and /report: the run's report),
OpenAPI docs at /docs. Every user error is a 4xx with {"detail": one line naming the problem and
the fix}: 413 for a body over the limit or too many items in one request, 415 for a content type
the model does not read, 400 for content that cannot be read (an undecodable image, a bad CSV, an
empty text, invalid JSON), 422 for parameters or a JSON shape that are wrong (top_k); 503 while
the model loads, when the queue is full or a request ran past its timeout.
"""
from __future__ import annotations

import asyncio
import io
import logging
import re
import tempfile
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from ..errors import TransferkitError
from .backends import Backend, load_backend
from .batching import MicroBatcher, ServerBusy
from .limits import BodyLimit
from .settings import DEFAULTS

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
#: Report files a browser may fetch from the run directory (never its weights or data).
REPORT_ASSETS = frozenset({".html", ".png", ".svg", ".jpg", ".jpeg", ".css", ".js"})
#: Content types of an image part that are plainly not images (anything else is decoded to find out).
NOT_IMAGES = ("text/", "application/json", "application/pdf", "application/zip", "video/", "audio/")


class UserError(HTTPException):
    """A 4xx answer whose detail is one line naming the problem and the fix."""


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


class _State:
    """The model as the app holds it: loading, ready, or failed to load."""

    def __init__(self) -> None:
        self.backend: Backend | None = None
        self.ready = False
        self.error: str | None = None
        self.batcher: MicroBatcher | None = None


def create_app(source: str | Path | Backend, max_body_bytes: int = DEFAULTS.max_body_bytes,
               max_batch: int = DEFAULTS.max_batch, timeout_s: float = DEFAULTS.timeout_s,
               batch_max_size: int = DEFAULTS.batch_max_size, batch_max_wait_ms: float = DEFAULTS.batch_max_wait_ms,
               max_queue: int = DEFAULTS.max_queue) -> FastAPI:
    """The server for `source`: a run directory (PyTorch), an `.onnx` file (onnxruntime) or a
    loaded `Backend`. A path is checked here (one `TransferkitError` line) and loaded in the
    background once the app starts, so /health answers at once and /ready once it is warm.

    max_body_bytes: largest request body (413 above it). max_batch: most images or texts in one
    request (413 above it). timeout_s: a request's time limit, queue and model call together (503
    after it). batch_max_size, batch_max_wait_ms: a model call gathers concurrent requests' items
    up to this many, waiting at most this long after the first. max_queue: requests that may wait
    (503 beyond)."""
    if not (max_body_bytes >= 1 and max_batch >= 1 and 0 < timeout_s < float("inf") and batch_max_size >= 1
            and 0 <= batch_max_wait_ms < float("inf")):  # written so NaN fails too
        raise TransferkitError("serve limits: body size, batch sizes and timeout must be positive.")
    if not isinstance(source, Backend):
        _check_source(Path(source))
    limits = {"max_body_bytes": max_body_bytes, "max_batch": max_batch, "timeout_s": timeout_s,
              "batch_max_size": batch_max_size, "batch_max_wait_ms": batch_max_wait_ms, "max_queue": max_queue}
    state = _State()

    def load() -> None:
        try:
            backend = source if isinstance(source, Backend) else load_backend(source)
            state.backend = backend
            backend.warm_up()
            state.ready = True
        except TransferkitError as exc:
            state.error = str(exc)
            log.error("%s", exc)
        except Exception as exc:  # a bug or a broken install: say so on /ready instead of hanging
            state.error = f"the model failed to load: {type(exc).__name__}: {exc}"
            log.exception("the model failed to load")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.batcher = MicroBatcher(lambda items, top_k: state.backend.predict(items, top_k),
                                     max_size=batch_max_size, max_wait_s=batch_max_wait_ms / 1000,
                                     max_queue=max_queue)
        state.batcher.start()
        threading.Thread(target=load, name="transferkit-load", daemon=True).start()
        yield
        await state.batcher.stop()

    # FastAPI's own /docs page loads Swagger UI from a CDN, blank on an offline device or network;
    # fastapi-offline serves the same page from files in its package
    from fastapi_offline import FastAPIOffline

    app = FastAPIOffline(title="transferkit prediction server", lifespan=lifespan,
                  description="Predictions of a transferkit model: POST /predict. The page at / does it in a browser.")
    app.state.model = state
    app.state.limits = limits
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    _error_handlers(app)

    def backend_or_503() -> Backend:
        if state.error:
            raise HTTPException(503, f"the model could not be loaded: {state.error}")
        if not state.ready or state.backend is None:
            raise HTTPException(503, "the model is still loading; retry when GET /ready answers 200")
        return state.backend

    @app.get("/health", summary="Liveness: 200 while the process runs")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready", summary="Readiness: 200 once the model is loaded and warmed up, 503 before")
    async def ready() -> JSONResponse:
        if state.ready:
            return JSONResponse({"status": "ready", "backend": state.backend.kind})
        status = "failed" if state.error else "loading"
        return JSONResponse({"status": status, "detail": state.error or "the model is loading"}, status_code=503)

    @app.get("/info", summary="The model: task, classes, backbone, strategy, test metrics, backend, limits")
    async def info() -> dict:
        backend = backend_or_503()
        return {**backend.summary(), "limits": limits}

    @app.get("/stats", summary="The micro-batcher's counts: requests, model calls, items per call")
    async def stats() -> dict:
        return state.batcher.stats.to_dict() if state.batcher else {}

    @app.post("/predict", summary="Predict: images (multipart field `file`), texts (JSON) or a history (CSV/JSON)",
              openapi_extra={"requestBody": _REQUEST_BODY_DOC})
    async def predict(request: Request, top_k: int = Query(1, ge=1, description="Classes per prediction "
                                                                                "(classifiers), 1 to the number of classes.")) -> dict:
        backend = backend_or_503()
        if backend.classes is not None and top_k > len(backend.classes):
            raise UserError(422, f"top_k={top_k}: the model has {len(backend.classes)} classes; ask for 1 to "
                                 f"{len(backend.classes)}")
        if backend.modality == "image":
            names, items = await _read_images(request, max_batch, backend.decode_side)
        elif backend.modality == "text":
            items = await _read_texts(request, max_batch)
            names = None
        else:
            return await _forecast(request, backend, state.batcher, timeout_s)
        results = await _submit(state.batcher, items, top_k, timeout_s)
        if names is not None:  # the upload's file name instead of the decoded image's repr
            results = [{"file": name, **{k: v for k, v in r.items() if k != "path"}} for name, r in zip(names, results)]
        return {"task": backend.task, "backend": backend.kind, "predictions": results}

    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    @app.get("/report", include_in_schema=False)
    async def report() -> FileResponse:
        return FileResponse(_report_file(state, "report.html"))

    @app.get("/report/{name:path}", include_in_schema=False)
    async def report_asset(name: str) -> FileResponse:
        return FileResponse(_report_file(state, name))

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _check_source(path: Path) -> None:
    """Fail at once, in one line, for a source that cannot be a model (loading comes later)."""
    from ..rundir import CONFIG_FILE

    path = path.expanduser()
    if path.is_dir() and (path / CONFIG_FILE).is_file():
        return
    if path.is_file() and path.suffix.lower() == ".onnx":
        return
    load_backend(path)  # raises the line that says what is wrong with it


def _report_file(state: _State, name: str) -> Path:
    backend = state.backend
    if backend is None or backend.run_dir is None:
        raise HTTPException(404, "no report: the server runs an exported .onnx file (reports live in run directories)")
    root = backend.run_dir.resolve()
    if any(ord(c) < 32 for c in name) or len(name) > 1024:  # a NUL cannot be in a path: os would raise
        raise HTTPException(404, f"{ascii(name)[:80]}: not a file of the run's report")
    path = (root / name).resolve()
    if not path.is_relative_to(root) or path.suffix.lower() not in REPORT_ASSETS or not path.is_file():
        raise HTTPException(404, f"{name}: not a file of the run's report" if name != "report.html" else
                            "the run has no report.html; write it with `transferkit fit` (or evaluate the run again)")
    return path


async def _submit(batcher: MicroBatcher, items: list, top_k: int, timeout_s: float) -> list:
    """The batcher's results, its refusals and timeouts as 503, user errors in the data as 400."""
    try:
        return await batcher.submit(items, top_k, timeout_s)
    except ServerBusy as exc:
        raise HTTPException(503, f"server busy ({exc}); retry shortly or raise --max-queue") from None
    except asyncio.TimeoutError:
        raise HTTPException(503, f"no answer within the {timeout_s:g} s timeout (the server is overloaded or the "
                                 "request too large); retry, send fewer items, or raise --timeout") from None
    except TransferkitError as exc:
        raise UserError(400, str(exc)) from None


# ---------------------------------------------------------------- reading requests
@asynccontextmanager
async def _form(request: Request):
    """The multipart form (400 when it cannot be parsed), its spooled files closed on exit."""
    from starlette.formparsers import MultiPartException

    try:
        form = await request.form(max_files=10_000, max_fields=10_000)  # the body limit bounds them
    except MultiPartException as exc:
        raise UserError(400, f"unreadable multipart body ({exc}); send files with multipart/form-data "
                             "in the field 'file'") from None
    try:
        yield form
    finally:
        await form.close()


def _uploads(form, max_batch: int, what: str, example: str) -> list[UploadFile]:
    """The files of the multipart field 'file': 400 when there are none, 413 for more than `max_batch`."""
    files = [f for f in form.getlist("file") if isinstance(f, UploadFile)]
    if not files:
        others = sorted({k for k, v in form.multi_items() if isinstance(v, UploadFile)})
        hint = f" (got files in {', '.join(repr(o) for o in others)})" if others else ""
        raise UserError(400, f"no {what} in the multipart field 'file'{hint}; send e.g. curl -F file=@{example}")
    if len(files) > max_batch:
        raise UserError(413, f"{len(files)} files in one request, over the limit of {max_batch}; split them into "
                             "several requests (the server's --max-batch sets the limit)")
    return files


async def _read_images(request: Request, max_batch: int, decode_side: int | None) -> tuple[list[str], list]:
    """The uploaded images, decoded (in a thread: decoding a photo takes milliseconds)."""
    from ..runtime.images import open_rgb

    if _media_type(request) != "multipart/form-data":
        raise UserError(415, f"this model reads images: send them as multipart/form-data in the field 'file' "
                             f"(curl -F file=@photo.jpg), not {_media_type(request) or 'a body without a content type'}")
    names, blobs = [], []
    async with _form(request) as form:
        for n, upload in enumerate(_uploads(form, max_batch, "image", "photo.jpg")):
            name = _upload_name(upload, n, f"file #{n + 1}")
            kind = (upload.content_type or "").lower()
            if kind.startswith(NOT_IMAGES):
                raise UserError(415, f"{name}: sent as {kind}, not an image; send JPEG, PNG, WebP, BMP, GIF or TIFF "
                                     "files")
            names.append(name)
            blobs.append(await upload.read())

    def decode() -> list:
        images = []
        for name, blob in zip(names, blobs):
            if not blob:
                raise UserError(400, f"{name}: empty file; send the image's bytes")
            buffer = io.BytesIO(blob)
            buffer.name = name  # named in open_rgb's errors
            try:
                images.append(open_rgb(buffer, max_side=decode_side))
            except TransferkitError as exc:
                raise UserError(400, str(exc)) from None
        return images

    return names, await asyncio.to_thread(decode)


async def _json_body(request: Request) -> Any:
    """The request's JSON, read within `parse_json`'s limits (depth, digits, Unicode, no NaN): 400 if not."""
    from ..safe_json import JsonProblem, parse_json

    body = await request.body()
    try:
        return parse_json(body, allow_nan=False)
    except JsonProblem as exc:
        raise UserError(400, f"invalid JSON body ({exc}); send e.g. {{\"texts\": [\"a review\"]}}") from None


#: Longest upload file name accepted (a file system's limit for one name).
MAX_NAME = 255


def _upload_name(upload: UploadFile, n: int, default: str) -> str:
    """The file name an upload was sent with (`default` when none): 400 for one no file could have,
    with a control character (NUL...) or over `MAX_NAME` characters."""
    name = upload.filename or default
    if len(name) > MAX_NAME:
        raise UserError(400, f"file #{n + 1}: a file name of {len(name)} characters; send names of at most {MAX_NAME}")
    # clients percent-encode a control character in the header (httpx sends a NUL as %00)
    if any(ord(c) < 32 or ord(c) == 127 for c in name + unquote(name)):
        raise UserError(400, f"file #{n + 1}: its name {ascii(name)[:80]} holds a control character (NUL, newline...); "
                             "rename the file")
    return name


async def _read_texts(request: Request, max_batch: int) -> list[str]:
    """Texts from JSON ({"texts": [...]}, {"text": "..."} or a list) or text/plain (one per line)."""
    kind = _media_type(request)
    if kind == "application/json":
        body = await _json_body(request)
        texts = body.get("texts", [body["text"]] if "text" in body else None) if isinstance(body, dict) else body
        if not isinstance(texts, list):
            raise UserError(422, "send JSON {\"texts\": [\"first text\", ...]} (or {\"text\": \"...\"}, or a list "
                                 "of strings)")
    elif kind == "text/plain":
        try:
            texts = [line for line in (await request.body()).decode("utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError:
            raise UserError(400, "the text/plain body is not UTF-8; send UTF-8 text, one text per line") from None
    else:
        raise UserError(415, f"this model reads texts: send JSON {{\"texts\": [...]}} (application/json) or "
                             f"text/plain with one text per line, not {kind or 'a body without a content type'}")
    if not texts:
        raise UserError(400, "no text to classify; send at least one non-empty text")
    if len(texts) > max_batch:
        raise UserError(413, f"{len(texts)} texts in one request, over the limit of {max_batch}; split them into "
                             "several requests (the server's --max-batch sets the limit)")
    for n, text in enumerate(texts):
        if not isinstance(text, str):
            raise UserError(422, f"texts[{n}] is {type(text).__name__}, not a string; send texts as JSON strings")
        if not text.strip():
            raise UserError(400, f"texts[{n}] is empty; every text must have some words")
    return texts


async def _forecast(request: Request, backend: Backend, batcher: MicroBatcher, timeout_s: float) -> dict:
    """The forecast after one history: a CSV upload (field 'file'), a text/csv body, or JSON rows
    ({"history": [{"date": ..., "load": ...}, ...]} or the list itself). The history is written to
    a temporary CSV, which both backends read as `predict` reads a file."""
    kind = _media_type(request)
    if kind == "multipart/form-data":
        async with _form(request) as form:
            files = _uploads(form, 10_000, "history CSV", "history.csv")
            if len(files) > 1:
                raise UserError(422, f"{len(files)} files: a forecast takes one history CSV per request")
            name, content = Path(_upload_name(files[0], 0, "history.csv")).name, await files[0].read()
    elif kind in ("text/csv", "text/plain"):
        name, content = "history.csv", await request.body()
    elif kind == "application/json":
        name, content = "history.csv", _rows_to_csv(await _json_body(request))
    else:
        raise UserError(415, f"this model forecasts from a history: upload a CSV (multipart field 'file'), send "
                             f"text/csv, or JSON {{\"history\": [rows]}}, not {kind or 'a body without a content type'}")
    if not content.strip():
        raise UserError(400, f"{name}: empty history; send the CSV of the series up to now")
    if not name.lower().endswith(".csv"):
        name += ".csv"
    with tempfile.TemporaryDirectory(prefix="transferkit-serve-") as folder:
        path = Path(folder) / "history.csv"  # the client's name is only shown, never a path on this machine
        path.write_bytes(content)
        try:
            (steps,) = await _submit(batcher, [path], 1, timeout_s)
        except UserError as exc:  # name the upload, not the temporary file
            raise UserError(exc.status_code, exc.detail.replace(str(path), name).replace(f"{folder}/", "")) from None
    return {"task": backend.task, "backend": backend.kind, "file": name, "predictions": steps,
            "series": [k for k in (steps[0] if steps else {}) if k != "time"]}


def _rows_to_csv(body: Any) -> bytes:
    """JSON rows (objects of one time step) as CSV, columns in the first row's order."""
    import csv

    rows = body.get("history") if isinstance(body, dict) else body
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise UserError(422, "send JSON {\"history\": [{\"date\": \"2024-01-01 00:00\", \"load\": 1.5}, ...]}: "
                             "one object per time step, oldest first")
    columns = list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


# ---------------------------------------------------------------- errors
def _error_handlers(app: FastAPI) -> None:
    """Every error as {"detail": one line}: validation errors flattened, unknown routes named."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        lines = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "body", "path"))
            lines.append(f"{where}: {error.get('msg', 'invalid value')}" if where else error.get("msg", "invalid value"))
        return JSONResponse({"detail": "; ".join(lines) + " (see /docs)"}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such page: {request.method} {request.url.path}; the API is described at /docs"
        elif exc.status_code == 405 and detail == "Method Not Allowed":
            detail = f"{request.method} is not allowed on {request.url.path}; see /docs"
        return JSONResponse({"detail": re.sub(r"\s+", " ", str(detail))}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}: {exc}); this is a bug in transferkit, "
                                       "please report it"}, status_code=500)


_REQUEST_BODY_DOC = {
    "description": "Image models: images in the multipart field `file` (repeatable). Text models: JSON "
                   "`{\"texts\": [...]}` or text/plain, one text per line. Forecast models: a history CSV (multipart "
                   "`file` or text/csv) or JSON `{\"history\": [{...}, ...]}`.",
    "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
        "application/json": {"schema": {"oneOf": [
            {"type": "object", "properties": {"texts": {"type": "array", "items": {"type": "string"}}}},
            {"type": "object", "properties": {"history": {"type": "array", "items": {"type": "object"}}}}]}},
        "text/csv": {"schema": {"type": "string"}},
        "text/plain": {"schema": {"type": "string"}},
    },
}
