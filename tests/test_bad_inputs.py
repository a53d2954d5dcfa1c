"""The bad-input corpus: every file the product reads back, every request the server takes and every
flag, option and environment variable, damaged one way at a time. Each case must end in exit 2 and
one line naming the file or flag (CLI), or a 4xx with a one-line `detail` (HTTP): never a traceback,
a 500, or a file of the user's deleted."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_cli as run_main
from transferkit.testing import make_image_folder
from tests.corpus.models import (forecast_meta, forecast_model, image_meta, image_model, text_meta, text_model,
                                 tokenizer_json)
from transferkit.safe_json import JsonProblem, parse_json

REPO = Path(__file__).resolve().parents[1]
DEEP = "[" * 100_000 + "]" * 100_000
BIG = "1" * 5000


def run_cli(monkeypatch, capsys, *args: str, env: dict | None = None) -> tuple[int, str, str]:
    """`transferkit ARGS` in this process (as `main` runs it): exit code, stdout, stderr."""
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    return run_main(monkeypatch, capsys, *args)


def assert_one_line(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    for word in words:
        assert word in err, err


# ------------------------------------------------------------------ the JSON reader itself
@pytest.mark.parametrize("text, reason", [
    (DEEP, "nested more than"),
    ('{"a": ' + DEEP + "}", "nested more than"),
    (BIG, "5000 digits"),
    ('{"n": -' + BIG + "}", "5000 digits"),
    ("1" * 500 + ".5", "characters"),
    ("1e999", "too large"),
    ('{"texts": ["\\ud800"]}', "lone surrogate"),
    ('{"\\udfff": 1}', "lone surrogate"),
    (b"\xff\xfe{}", "not UTF-8"),
    ("{", "Expecting"),
    ("", "Expecting"),
])
def test_parse_json_refuses_in_one_line(text, reason):
    with pytest.raises(JsonProblem, match=reason) as info:
        parse_json(text, allow_nan=False)
    assert "\n" not in str(info.value)


def test_parse_json_reads_what_transferkit_writes():
    value = {"a": [1, 2.5, None, True, "x]]}{", {"b": "\\u00e9 ünïcode"}], "n": 10**30, "nan": float("nan")}
    again = parse_json(json.dumps(value))
    assert again["a"] == value["a"] and again["n"] == 10**30 and again["nan"] != again["nan"]
    assert parse_json("[" * 100 + "]" * 100) is not None
    with pytest.raises(JsonProblem, match="NaN"):
        parse_json("NaN", allow_nan=False)
    with pytest.raises(JsonProblem, match="bytes"):
        parse_json("[1]", max_bytes=2)


# ------------------------------------------------------------------ ONNX metadata
def _broken(**where):
    def damage(meta):
        for dotted, value in where.items():
            *parents, key = dotted.split("__")
            target = meta
            for p in parents:
                target = target[p]
            if value is KeyError:
                target.pop(key)
            else:
                target[key] = value
        return meta
    return damage


IMAGE_CASES = {
    "no task": (_broken(task=KeyError), "no known task"),
    "task a number": (_broken(task=5), "no known task"),
    "format a string": (_broken(format="abc"), "'format' must be an integer"),
    "format newer": (_broken(format=99), "newer transferkit"),
    "no image": (_broken(image=KeyError), "missing key 'image'"),
    "image a list": (_broken(image=[8]), "'image' must be an object"),
    "size a string": (_broken(image__size="8"), "'image.size' must be an integer"),
    "size 0": (_broken(image__size=0), "'image.size' must be between 1"),
    "size huge": (_broken(image__size=10**9), "'image.size' must be between 1"),
    "classes null": (_broken(classes=None), "'classes' must be a non-empty list"),
    "classes empty": (_broken(classes=[]), "'classes' must be a non-empty list"),
    "classes shorter": (_broken(classes=["red", "green"]), "2 class names for an output of 3"),
    "classes numbers": (_broken(classes=[1, 2, 3]), "'classes' must be a non-empty list"),
    "heads a list": (_broken(heads=["a"]), "'heads' must map"),
    "heads more than outputs": (_broken(heads={"a": ["x", "y", "z"], "b": ["x", "y", "z"]}), "2 heads listed"),
    "metrics a list": (_broken(metrics=[1]), "'metrics' must be an object"),
    "run a number": (_broken(run=5), "'run' must be a string"),
}


@pytest.mark.parametrize("case", sorted(IMAGE_CASES))
def test_damaged_image_metadata_is_one_line(case, tmp_path, monkeypatch, capsys):
    damage, words = IMAGE_CASES[case]
    model = image_model(tmp_path / "model.onnx", damage(image_meta()))
    make_image_folder(tmp_path / "imgs", per_class=1, size=16)
    code, _, err = run_cli(monkeypatch, capsys, "predict", model, tmp_path / "imgs")
    assert_one_line(code, err, str(model), words)


@pytest.mark.parametrize("raw, words", [
    ("not json", "not valid JSON"),
    (DEEP, "nested more than"),
    ('{"task": "image-classification", "n": ' + BIG + "}", "5000 digits"),
    ("[1, 2]", "no known task"),
    ('{"task": "image-classification", "run": "\\ud800"}', "lone surrogate"),
])
def test_metadata_that_is_not_json_is_one_line(raw, words, tmp_path, monkeypatch, capsys):
    model = image_model(tmp_path / "model.onnx", raw)
    code, _, err = run_cli(monkeypatch, capsys, "predict", model, tmp_path)
    assert_one_line(code, err, words)


TEXT_CASES = {
    "tokenizer not JSON": (_broken(text__tokenizer="abc"), "'text.tokenizer' is not a tokenizer.json"),
    "tokenizer nested": (_broken(text__tokenizer=DEEP), "nested more than"),
    "tokenizer without model": (_broken(text__tokenizer="{}"), "no 'model'"),
    "tokenizer damaged": (_broken(text__tokenizer=tokenizer_json().replace('"WordLevel"', '"Nothing"')),
                          "the tokenizer cannot be built"),
    "tokenizer a number": (_broken(text__tokenizer=5), "'text.tokenizer' must be a string"),
    "max_length 0": (_broken(text__max_length=0), "'text.max_length' must be between 1"),
    "pad_id negative": (_broken(text__pad_id=-1), "'text.pad_id' must be at least 0"),
    "no pad_token": (_broken(text__pad_token=KeyError), "missing key 'text.pad_token'"),
    "classes longer": (_broken(classes=["a", "b", "c"]), "3 class names for an output of 2"),
}


@pytest.mark.parametrize("case", sorted(TEXT_CASES))
def test_damaged_text_metadata_is_one_line(case, tmp_path, monkeypatch, capsys):
    damage, words = TEXT_CASES[case]
    model = text_model(tmp_path / "model.onnx", damage(text_meta()))
    code, _, err = run_cli(monkeypatch, capsys, "predict", model, "good film")
    assert_one_line(code, err, str(model), words)


FORECAST_CASES = {
    "no forecast": (_broken(forecast=KeyError), "missing key 'forecast'"),
    "lookback a string": (_broken(forecast__lookback="4"), "'forecast.lookback' must be an integer"),
    "lookback 0": (_broken(forecast__lookback=0), "'forecast.lookback' must be at least 1"),
    "series empty": (_broken(forecast__series=[]), "at least one series"),
    "series numbers": (_broken(forecast__series=[1]), "'forecast.series' must be a list of strings"),
    "series longer than the output": (_broken(forecast__series=["load", "temp"]), "2 series named for an output of 1"),
    "frequency a number": (_broken(forecast__frequency=5), "'forecast.frequency' must be a string"),
}


@pytest.mark.parametrize("case", sorted(FORECAST_CASES))
def test_damaged_forecast_metadata_is_one_line(case, tmp_path, monkeypatch, capsys):
    damage, words = FORECAST_CASES[case]
    model = forecast_model(tmp_path / "model.onnx", damage(forecast_meta()))
    history = tmp_path / "history.csv"
    history.write_text("date,load\n" + "".join(f"2024-01-01 {h:02d}:00,{h}\n" for h in range(10)))
    code, _, err = run_cli(monkeypatch, capsys, "predict", model, history)
    assert_one_line(code, err, str(model), words)


def test_undamaged_tiny_models_predict(tmp_path, monkeypatch, capsys):
    """The corpus's models are sound: only the damage makes the cases above fail."""
    make_image_folder(tmp_path / "imgs", per_class=1, size=16)
    code, out, err = run_cli(monkeypatch, capsys, "predict", image_model(tmp_path / "i.onnx"), tmp_path / "imgs", "--json")
    assert code == 0 and len(json.loads(out)) == 3, err
    code, out, err = run_cli(monkeypatch, capsys, "predict", text_model(tmp_path / "t.onnx"), "good film", "--json")
    assert code == 0 and json.loads(out)[0]["label"] in ("negative", "positive"), err
    history = tmp_path / "history.csv"
    history.write_text("date,load\n" + "".join(f"2024-01-01 {h:02d}:00,{h}\n" for h in range(10)))
    code, out, err = run_cli(monkeypatch, capsys, "predict", forecast_model(tmp_path / "f.onnx"), history, "--json")
    assert code == 0 and [r["load"] for r in json.loads(out)] == [9.0, 9.0], err


# ------------------------------------------------------------------ HTTP: client mistakes are 4xx
@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny-onnx")
    return {"text": text_model(folder / "text.onnx"), "image": image_model(folder / "image.onnx"),
            "forecast": forecast_model(folder / "forecast.onnx")}


def _client(source):
    import contextlib

    from fastapi.testclient import TestClient

    from tests.helpers.serving import wait_ready
    from transferkit.serving.app import create_app

    @contextlib.contextmanager
    def client():
        # a server-side exception is answered as the app answers it (a 500), not re-raised into the test
        with TestClient(create_app(source), raise_server_exceptions=False) as c:
            wait_ready(c)
            yield c
    return client()


def assert_client_error(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "internal error" not in detail, detail
    for word in words:
        assert word in detail, detail


JSON_BODIES = {
    "nested 100,000 deep": (DEEP, "nested more than"),
    "texts nested deep": ('{"texts": ' + DEEP + "}", "nested more than"),
    "a bare 5,000-digit integer": (BIG, "5000 digits"),
    "a 5,000-digit text": ('{"text": ' + BIG + "}", "5000 digits"),
    "a lone surrogate": ('{"texts": ["\\ud800"]}', "lone surrogate"),
    "a lone surrogate key": ('{"\\udc00": 1, "texts": ["good"]}', "lone surrogate"),
    "NaN": ('{"texts": NaN}', "NaN"),
    "a float overflowing": ('{"texts": [1e999]}', "too large"),
    "not UTF-8": (b'{"texts": ["\xff"]}', "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(JSON_BODIES))
def test_json_bodies_a_client_got_wrong_are_400(case, tiny_models):
    body, words = JSON_BODIES[case]
    with _client(tiny_models["text"]) as client:
        response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert_client_error(response, 400, "invalid JSON body", words)


@pytest.mark.parametrize("case", ["nested 100,000 deep", "a bare 5,000-digit integer", "a lone surrogate"])
def test_forecast_json_bodies_a_client_got_wrong_are_400(case, tiny_models):
    body, words = JSON_BODIES[case]
    body = body if case != "a lone surrogate" else '{"history": [{"date": "\\ud800", "load": 1}]}'
    with _client(tiny_models["forecast"]) as client:
        response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert_client_error(response, 400, words)


UPLOAD_NAMES = {
    "a NUL": ("photo\x00.jpg", "control character"),
    "a newline": ("photo\n.jpg", "control character"),
    "300 characters": ("x" * 296 + ".jpg", "300 characters"),
}


@pytest.mark.parametrize("case", sorted(UPLOAD_NAMES))
@pytest.mark.parametrize("model", ["image", "forecast"])
def test_upload_names_no_file_can_have_are_400(case, model, tiny_models):
    from tests.helpers.serving import image_bytes

    name, words = UPLOAD_NAMES[case]
    name = name.replace(".jpg", ".csv") if model == "forecast" else name
    content = b"date,load\n" + b"".join(b"2024-01-01 %02d:00,%d\n" % (h, h) for h in range(10)) \
        if model == "forecast" else image_bytes()
    with _client(tiny_models[model]) as client:
        response = client.post("/predict", files={"file": (name, content, "text/csv" if model == "forecast"
                                                            else "image/jpeg")})
    assert_client_error(response, 400, words)


def test_raw_multipart_with_a_nul_in_the_file_name_is_400(tiny_models):
    """The bytes a hand-written client sends: the NUL itself, not httpx's %00."""
    csv = b"date,load\n" + b"".join(b"2024-01-01 %02d:00,%d\n" % (h, h) for h in range(10))
    body = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\x00b.csv\"\r\n"
            b"Content-Type: text/csv\r\n\r\n" + csv + b"\r\n--b--\r\n")
    with _client(tiny_models["forecast"]) as client:
        response = client.post("/predict", content=body, headers={"content-type": "multipart/form-data; boundary=b"})
    assert 400 <= response.status_code < 500, response.text
    assert "internal error" not in response.json()["detail"]


@pytest.mark.parametrize("path, status", [("/report/a%00.html", 404), ("/report/a%0a.html", 404),
                                          ("/report/" + "x" * 5000 + ".html", 404),
                                          ("/report/..%2f..%2fetc%2fpasswd", 404),
                                          ("/report/model.safetensors", 404)])
def test_report_paths_a_client_got_wrong_are_404(path, status, tmp_path):
    from transferkit.serving.backends import Backend

    class RunBackend(Backend):  # a loaded run: only its folder matters to /report
        kind, task, modality, classes, run_dir = "torch", "text-classification", "text", ["a", "b"], tmp_path

        def predict(self, items, top_k):
            return [{"text": t, "label": "a", "top_k": []} for t in items]

        def summary(self):
            return {"task": self.task}

    (tmp_path / "report.html").write_text("<html>report</html>")
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    with _client(RunBackend()) as client:
        assert client.get("/report").status_code == 200
        response = client.get(path)
    assert_client_error(response, status)


# ------------------------------------------------------------------ the feature cache
def _user_folder(root: Path) -> dict[Path, bytes]:
    """A folder of the user's holding exactly the names `cache clear` used to delete."""
    files = {root / "photos" / "meta.json": b'{"album": "holiday"}', root / "photos" / "embedding.npy": b"\x93NUMPY",
             root / "files.sqlite": b"SQLite format 3\x00", root / "files.sqlite-wal": b"wal",
             root / "notes.txt": b"mine"}
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return files


def test_cache_clear_keeps_a_user_folder_that_is_not_the_cache(tmp_path):
    files = _user_folder(tmp_path / "mine")
    env = {"PYTHONPATH": str(REPO / "src"), "TRANSFERKIT_CACHE": str(tmp_path / "mine"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", "from transferkit.cli import main; main()", "cache", "clear"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "not a transferkit feature cache" in proc.stderr and "nothing was deleted" in proc.stderr
    assert {p: p.read_bytes() for p in files if p.exists()} == files  # every file survives, unchanged


def test_features_are_not_cached_into_a_user_folder(tmp_path, caplog):
    """Pointed at a folder of the user's, the cache writes nothing there (a warning says why)."""
    import torch
    from torch import nn

    from tests.helpers.features import dataset
    from transferkit.models.features import extract_features

    files = _user_folder(tmp_path / "mine")
    make_image_folder(tmp_path / "imgs", per_class=2, size=16)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    torch.manual_seed(0)
    feats, _ = extract_features(net, dataset(sorted((tmp_path / "imgs").rglob("*.jpg"))), progress=False,
                                cache=tmp_path / "mine")
    assert feats.shape == (6, 4)
    assert sorted(p for p in (tmp_path / "mine").rglob("*")) == sorted({*files, tmp_path / "mine" / "photos"})
    assert "not a transferkit cache folder" in caplog.text


def test_a_new_cache_is_marked_and_cleared(tmp_path, monkeypatch, capsys):
    from torch import nn

    from tests.helpers.features import dataset
    from transferkit.models.features import extract_features

    make_image_folder(tmp_path / "imgs", per_class=2, size=16)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    extract_features(net, dataset(sorted((tmp_path / "imgs").rglob("*.jpg"))), progress=False, cache=tmp_path / "c")
    assert (tmp_path / "c" / "CACHEDIR.TAG").read_bytes().startswith(b"Signature: 8a477f597d28d172789f06886806bc55")
    (tmp_path / "c" / "mine.txt").write_text("a file of the user's beside the cache")
    code, out, err = run_cli(monkeypatch, capsys, "cache", "clear", env={"TRANSFERKIT_CACHE": str(tmp_path / "c")})
    assert code == 0 and "MB freed" in out, err
    assert not list((tmp_path / "c").rglob("*.npy")) and (tmp_path / "c" / "mine.txt").is_file()


@pytest.mark.parametrize("content", ["[1]", DEEP, "{", '{"module": 5}', '{"n": ' + BIG + "}"])
def test_cache_info_lists_a_damaged_meta_json_with_its_reason(content, tmp_path, monkeypatch, capsys):
    from torch import nn

    from tests.helpers.features import dataset
    from transferkit.models.features import extract_features

    make_image_folder(tmp_path / "imgs", per_class=2, size=16)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    extract_features(net, dataset(sorted((tmp_path / "imgs").rglob("*.jpg"))), progress=False, cache=tmp_path / "c")
    (meta,) = (tmp_path / "c").glob("*/meta.json")
    meta.write_text(content)
    code, out, err = run_cli(monkeypatch, capsys, "cache", "info", "--json", env={"TRANSFERKIT_CACHE": str(tmp_path / "c")})
    assert code == 0 and "Traceback" not in err, err
    (model,) = json.loads(out)["models"]
    assert model["problem"].startswith("meta.json") and model["rows"] == 6


@pytest.mark.parametrize("env, words", [
    ({"TRANSFERKIT_CACHE_MAX_GB": "abc"}, "TRANSFERKIT_CACHE_MAX_GB='abc'"),
    ({"TRANSFERKIT_CACHE_MAX_GB": "-1"}, "at least 0"),
    ({"TRANSFERKIT_CACHE_MAX_GB": "nan"}, "TRANSFERKIT_CACHE_MAX_GB"),
    ({"TRANSFERKIT_CACHE_MAX_GB": "inf"}, "TRANSFERKIT_CACHE_MAX_GB"),
    ({"TRANSFERKIT_CACHE_VERIFY": "maybe"}, "TRANSFERKIT_CACHE_VERIFY"),
])
def test_cache_environment_is_checked_before_any_work(env, words, tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "cache", "info", env={"TRANSFERKIT_CACHE": str(tmp_path), **env})
    assert_one_line(code, err, words)


# ------------------------------------------------------------------ files of a run read back
@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> tuple[Path, Path]:
    """(run, its data): a linear probe on 32-px coloured squares, with its exemplar memory."""
    from transferkit import ImageClassifier

    data = make_image_folder(tmp_path_factory.mktemp("bad-inputs") / "colours", per_class=6, size=32)
    est = ImageClassifier(strategy="linear-probe", image_size=32, batch_size=8, baseline=False, progress=False)
    est.fit(data)
    est.evaluate()
    return est.save(tmp_path_factory.mktemp("bad-inputs-runs") / "run"), data


def _edit_json(name: str, change):
    def damage(run: Path) -> None:
        data = json.loads((run / name).read_text())
        result = change(data)
        (run / name).write_text(json.dumps(data if result is None else result))
    return damage


def _write(name: str, text: str):
    return lambda run: (run / name).write_text(text)


def _lineage(value):
    return _edit_json("config.json", lambda c: c["run"].__setitem__("lineage", value))


STEP = {"old_classes": ["blue", "green"], "added": ["red"], "metrics": {"forgetting": 0.0}, "parent": "/somewhere"}

#: damage → (commands that must answer in one line, words of that line)
RUN_CASES = {
    "config nested deep": (lambda r: (r / "config.json").write_text((r / "config.json").read_text()[:-1]
                                                                     + ', "x": ' + DEEP + "}"),
                           ("runs", "compare", "extend", "predict"), "nested more than"),
    "config with a 5,000-digit number": (lambda r: (r / "config.json").write_text(
        (r / "config.json").read_text()[:-1] + ', "x": ' + BIG + "}"), ("compare", "extend", "predict"), "5000 digits"),
    "lineage a string": (_lineage("abc"), ("extend", "predict"), "'run.lineage' must be a list"),
    "lineage of numbers": (_lineage([5]), ("extend",), "run.lineage[0] must be a JSON object"),
    "lineage step without classes": (_lineage([{"metrics": {}}]), ("extend",), "missing key 'run.lineage[0].old_classes'"),
    "lineage step metrics a list": (_lineage([{**STEP, "metrics": [1]}]), ("extend",), "'run.lineage[0].metrics'"),
    "lineage step parent a number": (_lineage([{**STEP, "parent": 5}]), ("extend",), "'run.lineage[0].parent'"),
    "exports a number": (_write("exports.json", '{"exports": 5}'), ("runs",), "'exports' must be a list"),
    "exports a list": (_write("exports.json", "[1]"), ("runs",), "must be a JSON object"),
    "exports entry a number": (_write("exports.json", '{"exports": [1]}'), ("runs",), "exports[0] must be a JSON object"),
    "exports entry without status": (_write("exports.json", '{"exports": [{"path": "m.onnx", "format": "onnx", '
                                                            '"precision": "fp32"}]}'), ("runs",), "'exports[0].status'"),
    "exports nested deep": (_write("exports.json", DEEP), ("runs",), "nested more than"),
    "exports with a 5,000-digit number": (_write("exports.json", BIG), ("runs",), "5000 digits"),
    "memory labels out of range": (_edit_json("memory.json", lambda m: m.update(labels=[99] * len(m["labels"]))),
                                   ("extend",), "label 99 is not a class"),
    "memory labels strings": (_edit_json("memory.json", lambda m: m.update(labels=["x"] * len(m["labels"]))),
                              ("extend",), "'labels' must be a list of integers"),
    "memory labels negative": (_edit_json("memory.json", lambda m: m.update(labels=[-1] * len(m["labels"]))),
                               ("extend",), "label -1 is not a class"),
    "memory refs numbers": (_edit_json("memory.json", lambda m: m.update(refs=[1] * len(m["refs"]))),
                            ("extend",), "'refs' must be a list of strings"),
    "memory fewer labels": (_edit_json("memory.json", lambda m: m.update(labels=m["labels"][:2])),
                            ("extend",), "2 labels for"),
    "memory a list": (_write("memory.json", "[]"), ("extend",), "must be a JSON object"),
    "memory nested deep": (_write("memory.json", DEEP), ("extend",), "nested more than"),
    "weights in place of the memory": (lambda r: shutil.copy(r / "model.safetensors", r / "memory.safetensors"),
                                       ("extend",), "not an exemplar memory"),
}


@pytest.mark.parametrize("case", sorted(RUN_CASES))
def test_damaged_run_files_are_one_line(case, image_run, tmp_path, monkeypatch, capsys):
    damage, commands, words = RUN_CASES[case]
    run, data = image_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    if not (copy / "memory.safetensors").exists() and "memory" in case:
        pytest.skip("this run keeps no exemplar features")
    damage(copy)
    for command in commands:
        args = {"runs": ("runs", copy, "--json"), "compare": ("compare", copy, run),
                "extend": ("extend", copy, data, "--out", tmp_path / "grown", "--quiet"),
                "predict": ("predict", copy, data)}[command]
        code, out, err = run_cli(monkeypatch, capsys, *args)
        if command == "runs":  # `runs` lists a damaged run with the reason instead of failing
            assert code == 0 and "Traceback" not in err, err
            (listed,) = json.loads(out)
            assert words in (listed["problem"] or ""), listed
        else:
            assert_one_line(code, err, words)
        assert not (tmp_path / "grown").exists() or not any((tmp_path / "grown").iterdir())


# ------------------------------------------------------------------ flags, options and environment, up front
@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("flags") / "colours", per_class=4, size=16)


FIT_CASES = {
    "--lr nan": (["--lr", "nan"], "--lr: must be a finite number"),
    "--lr -1": (["--lr", "-1"], "--lr: must be more than 0"),
    "--lr 0": (["--lr", "0"], "--lr: must be more than 0"),
    "--max-seconds nan": (["--max-seconds", "nan"], "--max-seconds: must be a finite number"),
    "--weight-decay inf": (["--weight-decay", "inf"], "--weight-decay: must be a finite number"),
    "--val-fraction nan": (["--val-fraction", "nan"], "--val-fraction: must be a finite number"),
    "--option a word for a number": (["--strategy", "fine-tune", "--option", "layer_decay=abc"],
                                     "--option layer_decay=abc: must be a number"),
    "--option NaN": (["--strategy", "fine-tune", "--option", "layer_decay=NaN"],
                     "--option layer_decay=NaN: must be a finite number"),
    "--option a 5,000-digit number": (["--strategy", "fine-tune", "--option", "layer_decay=" + BIG],
                                      "layer_decay"),
    "--option nested deep": (["--strategy", "fine-tune", "--option", "layer_decay=" + "[" * 50_000],
                             "layer_decay"),
    "--option of another strategy": (["--strategy", "linear-probe", "--option", "trade_off=1"],
                                     "unknown option(s) trade_off"),
}


@pytest.mark.parametrize("case", sorted(FIT_CASES))
def test_fit_flags_and_options_are_refused_before_the_run_folder_is_made(case, colours, tmp_path, monkeypatch, capsys):
    args, words = FIT_CASES[case]
    code, _, err = run_cli(monkeypatch, capsys, "fit", colours, "--out", tmp_path / "run", *args)
    assert_one_line(code, err, words)
    assert not (tmp_path / "run").exists()


ENV_CASES = {
    "TRANSFERKIT_IMAGE_CACHE_MB=inf": ({"TRANSFERKIT_IMAGE_CACHE_MB": "inf"}, "TRANSFERKIT_IMAGE_CACHE_MB='inf'"),
    "TRANSFERKIT_IMAGE_CACHE_MB=nan": ({"TRANSFERKIT_IMAGE_CACHE_MB": "nan"}, "TRANSFERKIT_IMAGE_CACHE_MB='nan'"),
    "TRANSFERKIT_IMAGE_CACHE_MB=-1": ({"TRANSFERKIT_IMAGE_CACHE_MB": "-1"}, "at least 0"),
    "TRANSFERKIT_IMAGE_CACHE_MB=lots": ({"TRANSFERKIT_IMAGE_CACHE_MB": "lots"}, "TRANSFERKIT_IMAGE_CACHE_MB='lots'"),
    "TRANSFERKIT_CACHE_MAX_GB=nan": ({"TRANSFERKIT_CACHE_MAX_GB": "nan"}, "TRANSFERKIT_CACHE_MAX_GB='nan'"),
}


@pytest.mark.parametrize("case", sorted(ENV_CASES))
@pytest.mark.parametrize("command", ["fit", "lr-find"])
def test_environment_variables_are_checked_before_any_work(case, command, colours, tmp_path, monkeypatch, capsys):
    env, words = ENV_CASES[case]
    out = ["--out", tmp_path / ("run" if command == "fit" else "plot.png")]
    code, _, err = run_cli(monkeypatch, capsys, command, colours, *out, env=env)
    assert_one_line(code, err, words)
    assert not list(tmp_path.iterdir())


def test_image_cache_budget_of_infinity_is_one_line_in_the_api_too(monkeypatch):
    from transferkit.data.datasets import image_cache_bytes
    from transferkit.errors import DataError

    monkeypatch.setenv("TRANSFERKIT_IMAGE_CACHE_MB", "inf")
    with pytest.raises(DataError, match="TRANSFERKIT_IMAGE_CACHE_MB"):
        image_cache_bytes()
    monkeypatch.setenv("TRANSFERKIT_IMAGE_CACHE_MB", "0")
    assert image_cache_bytes() == 0


def test_adaptation_option_of_the_wrong_type_is_one_line(colours, tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "adapt", colours, colours, "--out", tmp_path / "run",
                           "--option", "trade_off=abc")
    assert_one_line(code, err, "--option trade_off=abc: must be a number", "strategy 'adapt'")
    assert not (tmp_path / "run").exists()


def test_a_target_domain_of_one_example_is_one_line(colours, tmp_path, monkeypatch, capsys):
    target = tmp_path / "target"
    target.mkdir()
    shutil.copy(next(colours.rglob("*.jpg")), target / "only.jpg")
    code, _, err = run_cli(monkeypatch, capsys, "adapt", colours, target, "--out", tmp_path / "run", "--quiet")
    assert_one_line(code, err, "1 target example", "at least 8")


@pytest.mark.parametrize("out, words", [("{dir}", "is a folder"), ("{file}/model.onnx", "is a file"),
                                         ("{file}", "is not a model written by `transferkit export`"),
                                         ("{dir}/model.txt", "name the file *.onnx"),
                                         ("/proc/model.onnx", "cannot write in /proc")])
def test_export_output_is_checked_before_any_work(out, words, image_run, tmp_path, monkeypatch, capsys):
    run, _ = image_run
    (tmp_path / "folder.onnx").mkdir()
    (tmp_path / "notes.onnx").write_text("my notes, not a model")
    path = out.format(dir=tmp_path / "folder.onnx", file=tmp_path / "notes.onnx")
    code, _, err = run_cli(monkeypatch, capsys, "export", run, "--out", path)
    assert_one_line(code, err, "--out", words)
    assert (tmp_path / "notes.onnx").read_text() == "my notes, not a model"  # never overwritten
    assert not list(tmp_path.rglob("*.partial")) and not list(run.glob("*.partial"))


@pytest.mark.parametrize("out, words", [("{dir}", "is a folder"), ("{file}/plot.png", "is a file"),
                                         ("/proc/plot.png", "cannot write in /proc")])
def test_lr_find_output_is_checked_before_any_work(out, words, colours, tmp_path, monkeypatch, capsys):
    (tmp_path / "folder").mkdir()
    (tmp_path / "notes.txt").write_text("mine")
    path = out.format(dir=tmp_path / "folder", file=tmp_path / "notes.txt")
    code, _, err = run_cli(monkeypatch, capsys, "lr-find", colours, "--out", path)
    assert_one_line(code, err, "--out", words)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "-inf", "-0.01"])
def test_export_max_drop_must_be_a_finite_number_of_at_least_0(value, image_run, tmp_path, monkeypatch, capsys):
    run, _ = image_run
    code, _, err = run_cli(monkeypatch, capsys, "export", run, "--quantize", "int8", f"--max-drop={value}",
                           "--out", tmp_path / "m.onnx")
    assert_one_line(code, err, "--max-drop", "at least 0")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("value", ["1e999", "9" * 400, "-1e39", "inf"])
def test_a_history_value_no_float_holds_is_400_not_a_null_forecast(value, tiny_models):
    csv = ("date,load\n" + "".join(f"2024-01-01 {h:02d}:00,{value if h == 5 else h}\n" for h in range(10))).encode()
    with _client(tiny_models["forecast"]) as client:
        response = client.post("/predict", content=csv, headers={"content-type": "text/csv"})
    assert_client_error(response, 400, "line 7", "not a finite number")


def test_serving_a_model_with_damaged_metadata_says_why_on_ready(tmp_path):
    from fastapi.testclient import TestClient

    from transferkit.serving.app import create_app

    meta = image_meta()
    meta["classes"] = None
    with TestClient(create_app(image_model(tmp_path / "model.onnx", meta)), raise_server_exceptions=False) as client:
        import time

        for _ in range(200):  # the model loads in the background
            ready = client.get("/ready")
            if ready.json()["status"] != "loading":
                break
            time.sleep(0.05)
        predict = client.post("/predict", files={"file": ("a.jpg", b"x", "image/jpeg")})
    assert ready.status_code == 503 and ready.json()["status"] == "failed"
    assert "'classes' must be a non-empty list" in ready.json()["detail"] and "\n" not in ready.json()["detail"]
    assert predict.status_code == 503 and "'classes' must be a non-empty list" in predict.json()["detail"]


def _split(change):
    return _edit_json("split.json", change)


SPLIT_CASES = {
    "numbers for examples": _split(lambda s: s.update(train=[1, 2])),
    "triples for examples": _split(lambda s: s.update(train=[["a", "b", "c"]])),
    "a number for a class": _split(lambda s: s.update(train=[[s["train"][0][0], 5]])),
    "a class the run does not have": _split(lambda s: s.update(train=[[s["train"][0][0], "purple"]])),
    "a split missing": _write("split.json", '{"train": []}'),
}


@pytest.mark.parametrize("case", sorted(SPLIT_CASES))
@pytest.mark.parametrize("command", ["extend", "export"])
def test_damaged_split_json_is_one_line(case, command, image_run, tmp_path, monkeypatch, capsys):
    run, data = image_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    SPLIT_CASES[case](copy)
    args = ("extend", copy, data, "--out", tmp_path / "grown", "--quiet") if command == "extend" else \
        ("export", copy, "--out", tmp_path / "m.onnx")
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert_one_line(code, err, "split.json")
    assert not list(tmp_path.glob("m.onnx*"))


@pytest.mark.parametrize("flag, value", [("--timeout", "nan"), ("--timeout", "inf"), ("--max-body-mb", "inf"),
                                         ("--max-body-mb", "nan"), ("--batch-wait-ms", "nan")])
def test_serve_limits_must_be_finite(flag, value, tiny_models, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "serve", tiny_models["text"], "--port", "0", flag, value)
    assert_one_line(code, err, flag)


def test_create_app_refuses_a_nan_limit(tiny_models):
    from transferkit.errors import TransferkitError
    from transferkit.serving.app import create_app

    with pytest.raises(TransferkitError, match="serve limits"):
        create_app(tiny_models["text"], timeout_s=float("nan"))
