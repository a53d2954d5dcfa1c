"""Reading labelled text tables: formats, column detection, row-precise errors, splits, few-shot sampling."""
import json

import pytest

from transferkit.data import load_text_data, read_text_table
from transferkit.data.splits import sample_per_class
from transferkit.errors import DataError

POS = ["great movie", "loved it", "wonderful acting", "a joy to watch", "brilliant and moving", "superb fun"]
NEG = ["awful film", "hated it", "boring plot", "a waste of time", "dull and slow", "terrible acting"]


def write_csv(path, rows, header="text,label"):
    path.write_text(header + "\n" + "\n".join(f'"{t}",{y}' for t, y in rows) + "\n")
    return path


@pytest.fixture
def reviews_csv(tmp_path):
    return write_csv(tmp_path / "reviews.csv", [(t, "pos") for t in POS] + [(t, "neg") for t in NEG])


def test_csv_columns_detected_by_name(reviews_csv):
    texts, labels, columns = read_text_table(reviews_csv)
    assert columns == {"text": "text", "label": "label"}
    assert texts[0] == "great movie" and labels[0] == "pos" and len(texts) == 12


def test_headerless_tsv_detected_by_content(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("".join(f"{t} \"quoted\"\t{y}\n" for t, y in [(t, 1) for t in POS] + [(t, 0) for t in NEG]))
    texts, labels, columns = read_text_table(path)
    assert columns == {"text": "column_1", "label": "column_2"}
    assert texts[0] == 'great movie "quoted"' and set(labels) == {"0", "1"}


def test_jsonl_and_explicit_columns(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"body": t, "stars": y, "id": i}) + "\n"
                            for i, (t, y) in enumerate([(t, "5") for t in POS] + [(t, "1") for t in NEG])))
    texts, labels, columns = read_text_table(path, text_column="body", label_column="stars")
    assert len(texts) == 12 and columns == {"text": "body", "label": "stars"}


@pytest.mark.parametrize("content, kwargs, message", [
    ("text,label\n\"good\",1\n,0\n", {}, "line 3 has an empty text"),
    ("text,label\n\"good\",1\n\"bad\",\n", {}, "line 3 has an empty label"),
    ("text,label\n\"good\",1\n", {"text_column": "review"}, "no column 'review' (--text-column); columns found: text, label"),
    ("a,b,c\nx,y,z\n", {}, "--label-column"),
    ("", {}, "file is empty"),
])
def test_bad_tables_fail_with_one_line_naming_the_file(tmp_path, content, kwargs, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match="bad.csv") as info:
        read_text_table(path, **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_missing_file_and_wrong_type(tmp_path):
    with pytest.raises(DataError, match="no such file or directory"):
        load_text_data(tmp_path / "nope.csv")
    (tmp_path / "x.parquet").write_text("x")
    with pytest.raises(DataError, match="unsupported file type"):
        read_text_table(tmp_path / "x.parquet")


def test_stratified_split_keeps_every_class_everywhere(reviews_csv):
    data = load_text_data(reviews_csv, val_fraction=0.2, test_fraction=0.25, seed=1)
    assert data.classes == ["neg", "pos"]
    assert len(data.train) + len(data.val) + len(data.test) == 12
    for split in (data.train, data.val, data.test):
        assert set(split.labels) == {0, 1}
    assert set(data.train.texts).isdisjoint(data.test.texts)


def test_folder_with_train_and_dev_uses_dev_as_test(tmp_path):
    write_csv(tmp_path / "train.csv", [(t, 1) for t in POS] + [(t, 0) for t in NEG])
    write_csv(tmp_path / "dev.csv", [("fine film", 1), ("bad film", 0)])
    data = load_text_data(tmp_path)
    assert data.test.texts == ["fine film", "bad film"] and data.classes == ["0", "1"]
    assert "test = dev.csv" in data.split["description"]


def test_labels_unknown_to_train_are_refused(tmp_path):
    write_csv(tmp_path / "train.csv", [(t, 1) for t in POS] + [(t, 0) for t in NEG])
    write_csv(tmp_path / "test.csv", [("meh", 2)])
    with pytest.raises(DataError, match=r"labels \['2'\] that train lacks"):
        load_text_data(tmp_path)


def test_shots_per_class_are_seeded_and_leave_no_validation(reviews_csv):
    a = load_text_data(reviews_csv, shots_per_class=2, seed=3, test_fraction=0.25)
    b = load_text_data(reviews_csv, shots_per_class=2, seed=3, test_fraction=0.25)
    assert a.train.texts == b.train.texts and sorted(a.train.labels) == [0, 0, 1, 1] and len(a.val) == 0
    with pytest.raises(DataError, match="smallest class has only"):
        load_text_data(reviews_csv, shots_per_class=50)


def test_sample_per_class_draws_k_of_each():
    chosen = sample_per_class([0] * 10 + [1] * 3, 4, seed=0)
    labels = [([0] * 10 + [1] * 3)[i] for i in chosen]
    assert labels.count(0) == 4 and labels.count(1) == 3


def test_hugging_face_dataset_name_without_the_library(monkeypatch):
    import sys

    from transferkit.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "datasets", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match="pip install datasets"):
        load_text_data("glue")


def test_hugging_face_dataset_splits_and_class_names(monkeypatch):
    """A stand-in for `datasets.load_dataset` (no hub here): label ids map to the ClassLabel names,
    and a split whose labels are all -1 (GLUE's hidden test labels) is dropped."""
    import sys
    import types

    import pandas as pd

    class Split:
        def __init__(self, texts, labels):
            self.frame = pd.DataFrame({"sentence": texts, "label": labels})
            self.features = {"label": types.SimpleNamespace(names=["negative", "positive"])}

        def to_pandas(self):
            return self.frame

    loaded = {"train": Split(POS + NEG, [1] * 6 + [0] * 6), "validation": Split(["fine", "bad"], [1, 0]),
              "test": Split(["?", "?"], [-1, -1])}
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=lambda name: loaded))
    data = load_text_data("glue/sst2-like")
    assert data.classes == ["negative", "positive"]
    assert data.test.texts == ["fine", "bad"] and "validation split is the test set" in data.split["description"]
    assert len(data.train) + len(data.val) == 12
