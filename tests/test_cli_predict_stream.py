"""`transferkit predict` streams: every prediction to --output in bounded pieces, the terminal table capped,
text tables read in chunks."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.helpers import run_cli
from transferkit.testing import make_image_folder
from transferkit.cli import use
from transferkit.data.text import iter_text_chunks
from transferkit.errors import DataError


@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> Path:
    """A linear probe on the MNIST CNN (tiny) at 32 px over coloured squares."""
    from transferkit import ImageClassifier
    from transferkit.backbones import offline_backbones

    if "mnist_cnn" not in offline_backbones():
        pytest.skip("mnist_cnn weights not installed")
    data = make_image_folder(tmp_path_factory.mktemp("fit") / "colours", per_class=8, size=32)
    est = ImageClassifier(backbone="mnist_cnn", strategy="linear-probe", image_size=32, baseline=False,
                          progress=False, memory=0, tta=False)
    est.fit(data)
    return est.save(tmp_path_factory.mktemp("runs") / "image")


@pytest.fixture(scope="module")
def many_images(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("predict") / "new", per_class=9, size=32, seed=3)  # 27


def test_predict_streams_every_row_to_a_file_beyond_the_caps(image_run, many_images, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(use, "PREDICT_CHUNK", 4)
    monkeypatch.setattr(use, "PREDICT_TABLE_ROWS", 5)
    out = tmp_path / "pred.csv"
    code, stdout, err = run_cli(monkeypatch, capsys, "predict", image_run, many_images, "--output", out, "--top-k", "2")
    assert code == 0, err
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 27 and not out.with_name("pred.csv.part").exists()
    assert set(rows[0]) == {"path", "label", "probability", "top_k"}
    assert {r["label"] for r in rows} <= {"red", "green", "blue"} and all(0 < float(r["probability"]) <= 1 for r in rows)
    assert "27 predictions written to" in stdout
    # the same predictions as JSON lines and as a JSON list (streamed), in the same order
    lines = tmp_path / "pred.jsonl"
    assert run_cli(monkeypatch, capsys, "predict", image_run, many_images, "-o", lines)[0] == 0
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    code, listed, _ = run_cli(monkeypatch, capsys, "predict", image_run, many_images, "--json")
    assert json.loads(listed) == records
    assert [r["label"] for r in records] == [r["label"] for r in rows]
    # the terminal table: the first 5, and a note saying how to get the rest
    code, shown, err = run_cli(monkeypatch, capsys, "predict", image_run, many_images)
    assert code == 0 and "first 5 predictions" in err
    assert sum(Path(r["path"]).name in shown for r in rows) == 5


def test_prediction_pieces_are_bounded(image_run, many_images):
    from transferkit.tasks import load_run

    est = load_run(image_run)
    items = est.read_prediction_inputs([str(many_images)], None)
    assert [len(p) for p in est.prediction_chunks(items, 10)] == [10, 10, 7]


def test_unknown_output_type_is_one_line(image_run, many_images, tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "predict", image_run, many_images, "-o", tmp_path / "p.xlsx")
    assert code == 2 and "use .csv, .tsv, .jsonl, .json" in err


def test_text_tables_are_read_in_chunks(tmp_path):
    table = tmp_path / "texts.csv"
    with table.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "review"])
        writer.writerows([[i, f"review number {i}, quite long"] for i in range(25)])
    pieces = list(iter_text_chunks(table, rows=10))
    assert [len(p) for p in pieces] == [10, 10, 5] and pieces[2][-1] == "review number 24, quite long"
    plain = tmp_path / "lines.txt"
    plain.write_text("one\n\ntwo\nthree\n")
    assert list(iter_text_chunks(plain, rows=2)) == [["one", "two"], ["three"]]
    table.write_text("text\nfine\n\"\"\nfine\n")
    with pytest.raises(DataError, match="line 3 has an empty text"):
        list(iter_text_chunks(table, rows=10))


def test_exported_models_read_text_files_in_chunks_too(tmp_path):
    from transferkit.runtime.text import iter_texts, read_texts

    table = tmp_path / "t.csv"
    table.write_text("id,comment\n" + "".join(f"{i},comment {i}\n" for i in range(7)))
    assert [len(p) for p in iter_texts(table, rows=3)] == [3, 3, 1]
    assert read_texts(table) == [f"comment {i}" for i in range(7)]
    tabbed = tmp_path / "t.txt"
    tabbed.write_text("good\t1\nbad\t0\n")
    assert list(iter_texts(tabbed, rows=1)) == [["good"], ["bad"]]
