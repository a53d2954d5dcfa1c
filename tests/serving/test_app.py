"""The prediction server's API through FastAPI's TestClient on real tiny runs: every endpoint, and
every user error answered with a 4xx and one line naming the problem (never a 5xx)."""
from __future__ import annotations

import json
import re
import sys
import threading

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the server needs the serve extra (pip install 'transferkit[serve]')")

from transferkit import load_run  # noqa: E402
from transferkit.errors import TransferkitError  # noqa: E402
from transferkit.rundir import read_metrics  # noqa: E402
from transferkit.serving import TorchBackend, create_app  # noqa: E402

from tests.helpers.serving import image_bytes, ready_client, wait_ready  # noqa: E402

LIMITS = dict(max_body_bytes=256 * 1024, max_batch=4)


def one_line(response, status: int) -> str:
    """The answer's detail, checked to be a 4xx (never a 5xx) with one non-empty line."""
    assert response.status_code == status, (response.status_code, response.text)
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail, detail
    return detail


@pytest.fixture(scope="module")
def image_client(image_run):
    with ready_client(create_app(image_run, **LIMITS)) as client:
        yield client


@pytest.fixture(scope="module")
def text_client(text_run):
    with ready_client(create_app(text_run, **LIMITS)) as client:
        yield client


@pytest.fixture(scope="module")
def forecast_client(forecast_run):
    with ready_client(create_app(forecast_run, **LIMITS)) as client:
        yield client


def files(*names_and_bytes, kind="image/jpeg"):
    return [("file", (name, data, kind)) for name, data in names_and_bytes]


# ------------------------------------------------------------------ endpoints
def test_health_ready_info_and_docs(image_client, image_run):
    assert image_client.get("/health").json() == {"status": "ok"}
    assert image_client.get("/ready").json() == {"status": "ready", "backend": "torch"}
    info = image_client.get("/info").json()
    config = json.loads((image_run / "config.json").read_text())
    metrics = read_metrics(image_run).metrics
    assert info["task"] == "image-classification" and info["modality"] == "image" and info["backend"] == "torch"
    assert info["classes"] == ["blue", "green", "red"] == config["classes"]
    assert info["backbone"] == config["backbone"]["name"] and info["strategy"] == config["strategy"]["used"]
    assert info["run"] == image_run.name and info["report"] is True
    assert info["metrics"]["accuracy"] == pytest.approx(metrics["accuracy"])
    assert info["limits"]["max_body_bytes"] == LIMITS["max_body_bytes"] and info["limits"]["max_batch"] == 4
    schema = image_client.get("/openapi.json").json()
    assert {"/predict", "/health", "/ready", "/info"} <= set(schema["paths"])
    assert "multipart/form-data" in schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    docs = image_client.get("/docs")
    assert docs.status_code == 200
    # the docs page works offline: its scripts come from this server, not a CDN
    scripts = re.findall(r'src="([^"]+)"', docs.text)
    assert scripts and all(src.startswith("/") for src in scripts)
    assert all(image_client.get(src).status_code == 200 for src in scripts)


def test_predict_images_matches_the_run_on_the_same_files(image_client, image_run, image_data):
    paths = [sorted((image_data / colour).glob("*.jpg"))[0] for colour in ("red", "green", "blue")]
    answer = image_client.post("/predict?top_k=2", files=files(*((p.name, p.read_bytes()) for p in paths)))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["task"] == "image-classification" and body["backend"] == "torch"
    records = body["predictions"]
    assert [r["file"] for r in records] == [p.name for p in paths]
    # the same files through the run's own `predict` (paths, decoded from disk): same classes and probabilities
    expected = load_run(image_run).prediction_records(paths, 2)
    for got, want in zip(records, expected):
        assert got["label"] == want["label"] and len(got["top_k"]) == 2
        assert [t["label"] for t in got["top_k"]] == [t["label"] for t in want["top_k"]]
        np.testing.assert_allclose([t["probability"] for t in got["top_k"]],
                                   [t["probability"] for t in want["top_k"]], atol=2e-4)


def test_image_estimator_takes_decoded_images_as_it_takes_their_files(image_run, image_data):
    from transferkit.data.images import open_rgb

    est = load_run(image_run)
    paths = sorted((image_data / "green").glob("*.jpg"))[:3]
    decoded = [open_rgb(p, max_side=est.image_size_) for p in paths]
    np.testing.assert_allclose(est.predict_proba(decoded), est.predict_proba(paths), atol=1e-6)
    # a big image in any mode is prepared as its file would be: shrunk, made RGB
    from PIL import Image

    rgba = Image.new("RGBA", (400, 300), (200, 40, 40, 255))
    assert est.predict([rgba]) == est.predict([rgba.convert("RGB")])


def test_predict_texts_in_each_json_form_and_plain_text(text_client, text_run):
    expected = load_run(text_run).prediction_records(["the film was wonderful", "the meal was awful"], 1)
    for body in ({"texts": ["the film was wonderful", "the meal was awful"]},
                 ["the film was wonderful", "the meal was awful"]):
        records = text_client.post("/predict", json=body).json()["predictions"]
        assert [(r["text"], r["label"]) for r in records] == [(e["text"], e["label"]) for e in expected]
    (single,) = text_client.post("/predict", json={"text": "the film was wonderful"}).json()["predictions"]
    assert single["label"] == expected[0]["label"]
    plain = text_client.post("/predict?top_k=2", content="the film was wonderful\n\nthe meal was awful\n",
                             headers={"content-type": "text/plain; charset=utf-8"}).json()["predictions"]
    assert [r["label"] for r in plain] == [e["label"] for e in expected] and len(plain[0]["top_k"]) == 2


def test_predict_forecast_from_a_csv_upload_or_json_rows(forecast_client, forecast_run, history_csv):
    expected = load_run(forecast_run).prediction_records(history_csv, 1)
    upload = forecast_client.post("/predict", files=files(("load.csv", history_csv.read_bytes()), kind="text/csv"))
    assert upload.status_code == 200, upload.text
    body = upload.json()
    assert body["task"] == "forecast" and body["series"] == ["load"] and body["file"] == "load.csv"
    assert body["predictions"] == expected and len(expected) == 12
    lines = history_csv.read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
    as_json = forecast_client.post("/predict", json={"history": rows})
    assert as_json.status_code == 200, as_json.text
    assert as_json.json()["predictions"] == expected
    raw = forecast_client.post("/predict", content=history_csv.read_bytes(), headers={"content-type": "text/csv"})
    assert raw.json()["predictions"] == expected


def test_stats_count_requests_and_model_calls(text_run):
    with ready_client(create_app(text_run)) as client:
        before = client.get("/stats").json()
        client.post("/predict", json={"texts": ["good", "bad", "fine"]})
        after = client.get("/stats").json()
    assert after["requests"] == before["requests"] + 1 and after["model_calls"] == before["model_calls"] + 1
    assert after["items"] == before["items"] + 3 and after["largest_batch"] >= 3


def test_page_and_report_are_served(image_client, image_run):
    page = image_client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="/static/app.js"' in page.text and "http" not in page.text.replace('href="/', "")  # nothing external
    for asset, kind in (("/static/app.js", "javascript"), ("/static/style.css", "text/css")):
        response = image_client.get(asset)
        assert response.status_code == 200 and kind in response.headers["content-type"]
    report = image_client.get("/report")
    assert report.status_code == 200 and report.text == (image_run / "report.html").read_text(encoding="utf-8")
    # the run's report assets only: never its weights, config or anything outside the run
    assert "report" in one_line(image_client.get("/report/model.safetensors"), 404)
    one_line(image_client.get("/report/..%2F..%2Fetc%2Fpasswd"), 404)


# ------------------------------------------------------------------ user errors: 4xx, one line, never 5xx
def test_body_over_the_limit_is_413_by_length_and_while_streaming(image_client):
    big = b"\0" * (LIMITS["max_body_bytes"] + 1)
    detail = one_line(image_client.post("/predict", files=files(("big.jpg", big))), 413)
    assert "0.25 MB" in detail and "--max-body-mb" in detail

    def chunks():  # no Content-Length: the cap applies as the bytes arrive
        for _ in range(8):
            yield b"\0" * 65536

    one_line(image_client.post("/predict", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"}),
             413)


def test_wrong_content_type_is_415(image_client, text_client, forecast_client):
    assert "multipart/form-data" in one_line(image_client.post("/predict", json={"texts": ["x"]}), 415)
    assert "not an image" in one_line(image_client.post("/predict", files=files(("notes.txt", b"hello"),
                                                                                    kind="text/plain")), 415)
    assert "application/json" in one_line(text_client.post("/predict", files=files(("a.jpg", image_bytes()))), 415)
    one_line(text_client.post("/predict", content=b"x", headers={"content-type": "application/xml"}), 415)
    one_line(forecast_client.post("/predict", content=b"<x/>", headers={"content-type": "application/xml"}), 415)
    one_line(image_client.post("/predict"), 415)  # no body, no content type


def test_undecodable_images_are_400_naming_the_file(image_client):
    good = image_bytes("red", fmt="PNG")
    for name, data in (("corrupt.jpg", b"not an image at all"), ("truncated.png", good[: len(good) // 2]),
                       ("empty.jpg", b"")):
        detail = one_line(image_client.post("/predict", files=files(("ok.jpg", image_bytes()), (name, data))), 400)
        assert detail.startswith(name), detail
    assert "field 'file'" in one_line(image_client.post("/predict", files=[("image", ("a.jpg", good, "image/png"))]), 400)
    one_line(image_client.post("/predict", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data"}),
             400)


def test_too_many_items_in_one_request_is_413(image_client, text_client):
    detail = one_line(image_client.post("/predict", files=files(*((f"{i}.jpg", image_bytes()) for i in range(5)))), 413)
    assert "5 files" in detail and "--max-batch" in detail
    assert "5 texts" in one_line(text_client.post("/predict", json={"texts": ["good"] * 5}), 413)


def test_bad_texts_are_400_or_422(text_client):
    assert "texts[1] is empty" in one_line(text_client.post("/predict", json={"texts": ["good", "  "]}), 400)
    one_line(text_client.post("/predict", json={"texts": []}), 400)
    one_line(text_client.post("/predict", content=b"{not json", headers={"content-type": "application/json"}), 400)
    one_line(text_client.post("/predict", content=b"\xff\xfe", headers={"content-type": "text/plain"}), 400)
    assert "not a string" in one_line(text_client.post("/predict", json={"texts": ["good", 3]}), 422)
    one_line(text_client.post("/predict", json={"reviews": ["good"]}), 422)


def test_bad_histories_are_400_naming_the_upload(forecast_client, history_csv):
    lines = history_csv.read_text().splitlines()
    cases = {
        "text.csv": "date,load\n2020-01-01 00:00:00,abc\n",  # not a number
        "short.csv": "\n".join(lines[:10]) + "\n",  # fewer rows than the lookback
        "other.csv": "a,b\n1,2\n3,4\n",  # not the run's series
        "binary.csv": "\x00\x01\x02",
    }
    for name, content in cases.items():
        detail = one_line(forecast_client.post("/predict", files=files((name, content.encode()), kind="text/csv")), 400)
        assert "transferkit-serve-" not in detail, detail  # the upload's name, not the temporary file's
    one_line(forecast_client.post("/predict", files=files(("a.csv", b"x"), ("b.csv", b"y"), kind="text/csv")), 422)
    one_line(forecast_client.post("/predict", json={"history": "not rows"}), 422)
    one_line(forecast_client.post("/predict", content=b"", headers={"content-type": "text/csv"}), 400)


def test_bad_top_k_unknown_routes_and_methods(image_client):
    red = files(("red.jpg", image_bytes()))
    assert "3 classes" in one_line(image_client.post("/predict?top_k=4", files=red), 422)
    assert one_line(image_client.post("/predict?top_k=0", files=red), 422).startswith("top_k")
    assert one_line(image_client.post("/predict?top_k=two", files=red), 422).startswith("top_k")
    assert "/nowhere" in one_line(image_client.get("/nowhere"), 404)
    one_line(image_client.get("/predict"), 405)


class GatedBackend(TorchBackend):
    """The real run's backend, with its warm-up and its model calls held until the test lets them
    run: the app's loading and timeout paths, observed without depending on how fast a machine is."""

    def __init__(self, run_dir) -> None:
        super().__init__(run_dir)
        self.loaded, self.calls = threading.Event(), threading.Event()

    def warm_up(self) -> None:
        self.loaded.wait(60)
        super().warm_up()

    def predict(self, items, top_k):
        self.calls.wait(60)
        return super().predict(items, top_k)


def test_ready_is_503_until_the_model_is_warm_and_predict_waits_for_it(text_run):
    from fastapi.testclient import TestClient

    backend = GatedBackend(text_run)
    backend.calls.set()
    with TestClient(create_app(backend)) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 503
        assert "still loading" in one_line(client.post("/predict", json={"texts": ["good"]}), 503)
        one_line(client.get("/info"), 503)
        backend.loaded.set()
        wait_ready(client)
        assert client.post("/predict", json={"texts": ["good"]}).status_code == 200


def test_a_request_past_its_timeout_is_503_and_the_server_goes_on(text_run):
    backend = GatedBackend(text_run)
    backend.loaded.set()
    backend.calls.set()
    with ready_client(create_app(backend, timeout_s=0.2)) as client:
        backend.calls.clear()  # the next model call hangs until released
        assert "timeout" in one_line(client.post("/predict", json={"texts": ["good"]}), 503)
        backend.calls.set()
        assert client.post("/predict", json={"texts": ["good"]}).status_code == 200
        assert client.get("/stats").json()["timeouts"] == 1


def test_sources_that_are_not_models_raise_one_line(tmp_path, image_run):
    with pytest.raises(TransferkitError, match="no such run directory"):
        create_app(tmp_path / "missing")
    with pytest.raises(TransferkitError, match="not a transferkit run"):
        create_app(tmp_path)
    with pytest.raises(TransferkitError, match="not a run directory or an .onnx file"):
        create_app(image_run / "config.json")


def test_onnx_backend_answers_like_the_run(image_run, tmp_path):
    """The run exported by `transferkit export` and served through onnxruntime answers as the run does."""
    import subprocess

    pytest.importorskip("onnxruntime", reason="serving an .onnx file needs the runtime extra")
    model = tmp_path / "model.onnx"
    done = subprocess.run([sys.executable, "-m", "transferkit.cli", "export", str(image_run), "--format", "onnx",
                           "--out", str(model)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    red = files(("red.jpg", image_bytes("red")), ("blue.jpg", image_bytes("blue")))
    with ready_client(create_app(model)) as client:
        info = client.get("/info").json()
        onnx = client.post("/predict?top_k=3", files=red).json()
        assert client.get("/report").status_code == 404
    with ready_client(create_app(image_run)) as client:
        torch = client.post("/predict?top_k=3", files=red).json()
    assert info["backend"] == onnx["backend"] == "onnx" and info["classes"] == ["blue", "green", "red"]
    for a, b in zip(onnx["predictions"], torch["predictions"]):
        assert a["label"] == b["label"] and a["file"] == b["file"]
        np.testing.assert_allclose([t["probability"] for t in a["top_k"]], [t["probability"] for t in b["top_k"]],
                                   atol=1e-3)
    # a device serves the exported file without torch: the same request in a process where torch and
    # the other training libraries cannot be imported
    photo = tmp_path / "red.jpg"
    photo.write_bytes(image_bytes("red"))
    code = f"""
import sys, time
for name in ("torch", "torchvision", "timm", "lightning", "transformers", "pandas", "sklearn"):
    sys.modules[name] = None
from fastapi.testclient import TestClient
from transferkit.serving import create_app
with TestClient(create_app({str(model)!r})) as client:
    while client.get("/ready").status_code != 200:
        time.sleep(0.1)
    with open({str(photo)!r}, "rb") as f:
        print(client.post("/predict?top_k=3", files={{"file": ("red.jpg", f, "image/jpeg")}}).json()["predictions"][0]["label"])
"""
    alone = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.strip() == onnx["predictions"][0]["label"]
