"""The commands that use a run: `evaluate`, `predict`, `serve` and `export`."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.markup import escape

from .._format import counted
from ..errors import TransferkitError
from ..serving.settings import ServeSettings
from . import app, console, err_console
from .json_output import print_json, stream_json_list
from .options import ENGINE_OPTION, Engine
from .render import _print_metrics, _rich_table


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="Run directory written by `transferkit fit` or `adapt`."),
    data: str = typer.Argument(..., help="Labelled data of the run's kind (image folder, text table...); for an "
                               "adapted run, labelled target-domain data measure the adaptation."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON."),
) -> None:
    """Evaluate a saved model on labelled data."""
    from ..tasks import load_run

    est = load_run(run_dir)
    metrics = est.evaluate(data)
    if as_json:
        print_json(metrics)
    else:
        _print_metrics(est, metrics, data=data)


#: `predict` prints at most this many predictions as a table; --output FILE or --json give them all.
PREDICT_TABLE_ROWS = 200
#: Inputs predicted at a time when every prediction is written (--output, --json): memory stays bounded.
PREDICT_CHUNK = 512
PREDICTION_FORMATS = (".csv", ".tsv", ".jsonl", ".json")


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="Run directory written by `transferkit fit` or `adapt`, or a model.onnx "
                                   "written by `transferkit export`."),
    inputs: list[str] = typer.Argument(None, help="Image files/folders, texts for a text model, or a history CSV "
                                       "for a forecast model."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="Text model: a file of texts (one per line, "
                                        "or a CSV/TSV/JSONL table with a text column), read in pieces."),
    top_k: int = typer.Option(1, min=1, help="How many classes to show per input."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON list of predictions."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write every prediction to this file "
                                          "(.csv, .tsv, .jsonl or .json), streamed as they are made: inputs far "
                                          "larger than memory are predicted in bounded memory."),
    engine: Engine = ENGINE_OPTION,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Say on stderr which engine answered (onnx or "
                                 "torch) and why."),
    conf: Optional[float] = typer.Option(None, "--conf", min=0.0, max=1.0, help="Detection: keep boxes scoring at "
                                         "least this (default: the run's conf)."),
    save_images: Optional[Path] = typer.Option(None, "--save-images", help="Detection: write each image with its "
                                               "boxes drawn to this folder."),
) -> None:
    """Predict with a saved model (a run, or a model.onnx from `transferkit export`): images, texts,
    or the next steps of a series. The terminal shows at most 200 predictions; --output writes all."""
    if output is not None and output.suffix.lower() not in PREDICTION_FORMATS:
        raise TransferkitError(f"--output {output}: unsupported file type {output.suffix or '(none)'}; use "
                               f"{', '.join(PREDICTION_FORMATS)}.")
    if run_dir.suffix.lower() == ".onnx" or run_dir.is_file():  # an exported model: onnxruntime only, no torch
        from ..runtime import OnnxPredictor

        if engine is Engine.torch:
            raise TransferkitError(f"--engine torch: {run_dir} is an exported model, which runs with onnxruntime only; "
                                   "pass its run directory for PyTorch.")
        est = OnnxPredictor.load(run_dir)
        if verbose:
            err_console.print(f"engine: onnx ({escape(str(run_dir))})", highlight=False, soft_wrap=True)
    else:
        from ..tasks import predictor_for

        est, choice = predictor_for(run_dir, engine.value)  # the ONNX twin when valid: no torch import
        if verbose:
            err_console.print(escape(choice.describe(run_dir)), highlight=False, soft_wrap=True)
    if conf is not None or save_images is not None:
        if not hasattr(est, "set_prediction_options"):
            raise TransferkitError("--conf and --save-images are options of a detection run's predictions; this "
                                   "model takes neither.")
        est.set_prediction_options(conf=conf, save_images=save_images)
    items = est.read_prediction_inputs(list(inputs or []), file)
    if output is not None or as_json:
        records = (r for piece in est.prediction_chunks(items, PREDICT_CHUNK) for r in est.prediction_records(piece, top_k))
        if output is None:
            stream_json_list(records, sys.stdout)
            return
        shown, count = _write_predictions(records, output, keep=0 if as_json else PREDICT_TABLE_ROWS)
        if shown:
            console.print(_rich_table(est.prediction_table(items, shown)))
        console.print(f"{counted(count, 'prediction')} written to {escape(str(output))}", highlight=False,
                      soft_wrap=True)
        return
    pieces = est.prediction_chunks(items, PREDICT_TABLE_ROWS)
    first = next(pieces, [])
    records = est.prediction_records(first, top_k)
    console.print(_rich_table(est.prediction_table(items, records)))
    if next(pieces, None) is not None:  # more inputs: read, not predicted
        err_console.print(f"[yellow]note:[/] showing the first {counted(len(records), 'prediction')}; "
                          "--output FILE (.csv, .jsonl...) or --json writes every one", highlight=False,
                          soft_wrap=True)


def _write_predictions(records: Iterator[dict], path: Path, keep: int) -> tuple[list[dict], int]:
    """Write `records` to `path` (.csv/.tsv: one row each, `flat_record`; .jsonl: one object per line;
    .json: one list) as they come, under a temporary name renamed at the end, so a stopped run
    leaves no half-written file under `path`; returns the first `keep` records and the count."""
    import csv

    from .._format import flat_record

    suffix = path.suffix.lower()
    path = path.expanduser()
    part = path.with_name(path.name + ".part")
    kept: list[dict] = []
    count = 0
    try:
        with open(part, "w", encoding="utf-8", newline="") as f:
            if suffix == ".json":
                def counting():
                    nonlocal count
                    for record in records:
                        count += 1
                        if len(kept) < keep:
                            kept.append(record)
                        yield record
                stream_json_list(counting(), f)
            else:
                writer = None
                for record in records:
                    if suffix == ".jsonl":
                        f.write(json.dumps(record, ensure_ascii=False) + "\n")
                    else:
                        row = flat_record(record)
                        if writer is None:
                            writer = csv.DictWriter(f, fieldnames=list(row), delimiter="\t" if suffix == ".tsv" else ",",
                                                    extrasaction="ignore")
                            writer.writeheader()
                        writer.writerow(row)
                    count += 1
                    if len(kept) < keep:
                        kept.append(record)
        os.replace(part, path)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise TransferkitError(f"--output {path}: cannot write ({exc.strerror or exc}); pick a writable path.") from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return kept, count


def _listening_socket(host: str, port: int):
    """A socket bound to host:port (port 0: a free one), or one line saying why it cannot be."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise TransferkitError(f"--host {host}: not an address of this machine ({exc.strerror}); "
                               "use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait for TIME_WAIT
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = "pick another with --port (0: any free port)" if exc.errno in (98, 48, 10048) else "check --host and --port"
        raise TransferkitError(f"cannot listen on {host}:{port} ({exc.strerror}); {hint}") from None
    return sock


_SERVE = ServeSettings()


@app.command()
def serve(
    source: Path = typer.Argument(..., metavar="RUN_OR_ONNX", help="Run directory of `transferkit fit`, or an .onnx "
                                  "file of `transferkit export`."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; 127.0.0.1 keeps it to this machine "
                             "(0.0.0.0: every interface, without authentication)."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port (0: any free port)."),
    max_body_mb: float = typer.Option(_SERVE.max_body_bytes / 2**20, min=0.001, help="Largest request body in MB "
                                      "(413 above)."),
    max_batch: int = typer.Option(_SERVE.max_batch, min=1, help="Most images or texts in one request (413 above)."),
    timeout: float = typer.Option(_SERVE.timeout_s, min=0.001, help="Seconds a request may take, queue and model "
                                  "together (503 after)."),
    batch_size: int = typer.Option(_SERVE.batch_max_size, min=1, help="Micro-batching: most items in one model call, "
                                   "gathered from concurrent requests."),
    batch_wait_ms: float = typer.Option(_SERVE.batch_max_wait_ms, min=0, help="Micro-batching: how long a model call "
                                        "waits for more requests after the first."),
    engine: Engine = ENGINE_OPTION,
) -> None:
    """Serve a model over HTTP: POST /predict, a page at / to try it, OpenAPI docs at /docs."""
    import ipaddress
    import math

    from ..serving import create_app, load_backend

    for flag, value in (("--max-body-mb", max_body_mb), ("--timeout", timeout), ("--batch-wait-ms", batch_wait_ms)):
        if not math.isfinite(value):  # NaN passes click's ranges, and an infinite limit is none
            raise TransferkitError(f"{flag} {value}: must be a finite number (default: see `transferkit serve --help`).")

    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        err_console.print(f"[yellow]warning:[/] listening on {host}: anyone who can reach this machine can send "
                          "requests (the server has no authentication); use 127.0.0.1 to keep it local",
                          soft_wrap=True, highlight=False)
    sock = _listening_socket(host, port)
    try:
        backend = load_backend(source, engine.value)
        import uvicorn

        app_ = create_app(backend, max_body_bytes=int(max_body_mb * 2**20), max_batch=max_batch, timeout_s=timeout,
                          batch_max_size=batch_size, batch_max_wait_ms=batch_wait_ms)
        bound_host, bound_port = sock.getsockname()[:2]
        everywhere = bound_host in ("0.0.0.0", "::")  # every interface: this machine reaches it on loopback
        shown = "127.0.0.1" if everywhere else f"[{bound_host}]" if ":" in bound_host else bound_host
        console.print(f"serving {escape(str(source))} ({backend.task}, {backend.kind}) at [bold]http://{shown}:{bound_port}/[/]"
                      f"{' (and on every interface)' if everywhere else ''} — API docs /docs; Ctrl-C stops",
                      highlight=False, soft_wrap=True)
        server = uvicorn.Server(uvicorn.Config(app_, log_level="warning", timeout_graceful_shutdown=5))
        server.run(sockets=[sock])
    finally:
        sock.close()


@app.command()
def export(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run directory written by `transferkit fit` or `adapt`."),
    format: str = typer.Option("onnx", "--format", help="Export format (onnx)."),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="Also write an int8 model (int8): kept only if "
                                           "it loses at most --max-drop accuracy against the fp32 model (the "
                                           "layers left in float chosen on the validation split, then checked "
                                           "on the test split)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="The fp32 model file (default RUN/model.onnx); the "
                                       "int8 model goes beside it as <name>.int8.onnx."),
    max_drop: float = typer.Option(0.01, "--max-drop", help="Largest accuracy loss of int8 against fp32 (absolute, "
                                   "0.01 = 1 point; forecasts: relative increase of the MSE). Over it, the int8 "
                                   "model is not kept: a warning says why, the fp32 model is the result, exit 0."),
    tta: Optional[bool] = typer.Option(None, "--tta/--no-tta", help="Images: the flip average inside the graph "
                                       "(default: as the run predicts; --no-tta halves the cost per image)."),
) -> None:
    """Export a run to ONNX for onnxruntime (fp32, and int8 with --quantize int8), checked against PyTorch."""
    from ..export import describe_export, export_run
    from ..rundir import output_folder

    with output_folder(Path(out).expanduser().parent if out else run_dir):  # a failed export leaves no empty folder
        result = export_run(run_dir, format=format, quantize=quantize, out=out, max_drop=max_drop, tta=tta)
    for entry in result.exports:
        console.print(escape(describe_export(entry)), highlight=False, soft_wrap=True)
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True, highlight=False)
    console.print(f"ship: {escape(str(result.path))}", highlight=False, soft_wrap=True)
