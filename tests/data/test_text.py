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
    """Label ids map to the ClassLabel names, and a split whose labels are all -1 (GLUE's hidden
    test labels) is dropped."""
    install_fake_datasets(monkeypatch, {"train": (POS + NEG, [1] * 6 + [0] * 6),
                                        "validation": (["fine", "bad"], [1, 0]), "test": (["?", "?"], [-1, -1])})
    data = load_text_data("glue/sst2-like")
    assert data.classes == ["negative", "positive"]
    assert data.test.texts == ["fine", "bad"] and "validation split is the test set" in data.split["description"]
    assert len(data.train) + len(data.val) == 12


# ----------------------------------------------------------------------------- missing and rare labels
ROWS = [(t, 1) for t in POS] + [(t, 0) for t in NEG]


def write_table(path, rows, hole):
    """`rows` plus one row whose label is `hole` (None: JSON null), as the file type of `path`."""
    suffix = path.suffix
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows + [("meh", hole)]))
    elif suffix == ".json":
        path.write_text(json.dumps([{"text": t, "label": y} for t, y in rows + [("meh", hole)]]))
    elif suffix == ".csv":
        path.write_text("text,label\n" + "".join(f'"{t}",{y}\n' for t, y in rows + [("meh", hole)]))
    else:  # .tsv with a header, .txt without (as SST-2 ships)
        header = "sentence\tlabel\n" if suffix == ".tsv" else ""
        path.write_text(header + "".join(f"{t}\t{y}\n" for t, y in rows + [("meh", hole)]))
    return path


@pytest.mark.parametrize("name, hole, where", [
    ("a.csv", "NaN", "line 14"), ("a.csv", "", "line 14"), ("a.csv", "None", "line 14"),
    ("a.tsv", "nan", "line 14"), ("a.txt", "NULL", "line 13"), ("a.txt", "N/A", "line 13"),
    ("a.jsonl", None, "line 13"), ("a.jsonl", "NaN", "line 13"), ("a.json", "null", "row 13"),
])
def test_missing_labels_are_refused_with_their_line(tmp_path, name, hole, where):
    path = write_table(tmp_path / name, ROWS, hole)
    with pytest.raises(DataError) as info:
        load_text_data(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {where} has ") and "label those rows or remove them" in message
    assert "\n" not in message


def test_line_numbers_count_texts_that_span_lines(tmp_path):
    path = tmp_path / "multi.csv"
    path.write_text('text,label\n"first line\nsecond line",1\n"one line",0\n"x",NaN\n')
    with pytest.raises(DataError, match=r"multi.csv: line 5 has no label: 'NaN' \(column 'label'"):
        read_text_table(path)


def test_missing_labels_in_a_hugging_face_split_are_refused(monkeypatch):
    """A ClassLabel stores a missing label as -1: a few of them (not the whole hidden test split) are holes."""
    install_fake_datasets(monkeypatch, {"train": ([*POS, *NEG], [1] * 6 + [0] * 5 + [-1])})
    with pytest.raises(DataError, match=r"the train split's row 12 has no label: '-1' \(column 'label'"):
        load_text_data("user/sentiment")


def test_mixed_labels_warn_about_the_rare_class(tmp_path, caplog):
    """`pos` among 0/1 labels is a stray value: kept as a class (it may be real), but the user is
    told, in the log and in the notes that reach the run's report."""
    rows = [(f"{t} {i}", y) for i in range(4) for t, y in ROWS] + [("what a film", "pos"), ("so good", "pos")]
    path = write_csv(tmp_path / "mixed.csv", rows)
    with caplog.at_level("WARNING"):
        data = load_text_data(path)
    assert data.classes == ["0", "1", "pos"]
    assert len(data.notes) == 1 and "'pos' (2 rows)" in data.notes[0] and "mixes numbers and words" in data.notes[0]
    assert "'0'" not in data.notes[0].split("next to")[0]  # only the rare class is named as rare
    assert any("'pos' (2 rows)" in r.getMessage() for r in caplog.records)
    balanced = load_text_data(write_csv(tmp_path / "ok.csv", [(f"{t} {i}", y) for i in range(4) for t, y in ROWS]))
    assert balanced.notes == []


def test_a_class_under_one_percent_of_the_largest_is_rare(tmp_path):
    rows = [(f"good {i}", "a") for i in range(1000)] + [(f"bad {i}", "b") for i in range(9)]
    data = load_text_data(write_csv(tmp_path / "skewed.csv", rows))
    assert len(data.notes) == 1 and "'b' (9 rows)" in data.notes[0]


# ----------------------------------------------------------------------------- label names
def test_label_names_as_a_list_follow_the_sorted_labels(tmp_path):
    path = write_csv(tmp_path / "s.csv", ROWS)
    data = load_text_data(path, label_names="negative, positive")
    assert data.classes == ["negative", "positive"] and data.label_names == {"0": "negative", "1": "positive"}
    assert data.names_from == "--label-names"
    named = {t: data.classes[y] for s in (data.train, data.val, data.test) for t, y in zip(s.texts, s.labels)}
    assert named == {**{t: "positive" for t in POS}, **{t: "negative" for t in NEG}}
    assert set(data.summary()["counts"]["train"]) == {"negative", "positive"}
    assert all(label in ("negative", "positive") for _, label in data.split_record()["test"])


@pytest.mark.parametrize("given", ["1=positive,0=negative", {1: "positive", 0: "negative"}])
def test_label_names_as_a_mapping(tmp_path, given):
    data = load_text_data(write_csv(tmp_path / "s.csv", ROWS), label_names=given)
    assert data.classes == ["negative", "positive"]
    texts = dict(zip(data.train.texts + data.test.texts, data.train.labels + data.test.labels))
    assert all(data.classes[y] == "positive" for t, y in texts.items() if t in POS)


@pytest.mark.parametrize("given, message", [
    ("negative,neutral,positive", "--label-names gives 3 name(s) (negative, neutral, positive) but {path} has "
                                  "2 labels (0, 1); give one name per label, in that order."),
    ("negative", "--label-names gives 1 name(s) (negative) but {path} has 2 labels (0, 1)"),
    ("0=negative,2=positive", "--label-names: no label 2 in {path}; labels found: 0, 1."),
    ("0=negative", "--label-names: no name for 1 in {path}; labels found: 0, 1."),
    ("0=negative,1", "--label-names '0=negative,1': '1' is not LABEL=NAME"),
    ("good,good", "names must be non-empty and distinct"),
])
def test_wrong_label_names_fail_with_one_line(tmp_path, given, message):
    path = write_csv(tmp_path / "s.csv", ROWS)
    with pytest.raises(DataError) as info:
        load_text_data(path, label_names=given)
    assert message.format(path=path) in str(info.value) and "\n" not in str(info.value)


def test_label_names_from_a_label_text_column(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": y, "label_text": ["neg", "pos"][y]}) + "\n"
                            for t, y in ROWS))
    data = load_text_data(path)
    assert data.columns == {"text": "text", "label": "label"}
    assert data.classes == ["neg", "pos"] and data.names_from == "column 'label_text'"
    assert load_text_data(path, label_names="bad,good").classes == ["bad", "good"]  # the user's names win


def install_fake_datasets(monkeypatch, splits: dict, names=("negative", "positive")):
    """A stand-in for `datasets.load_dataset` (no hub here) with a ClassLabel-like label feature."""
    import sys
    import types

    import pandas as pd

    class Split:
        def __init__(self, texts, labels):
            self.frame = pd.DataFrame({"sentence": texts, "label": labels})
            self.features = {"label": types.SimpleNamespace(names=list(names))}

        def to_pandas(self):
            return self.frame

    loaded = {key: Split(*value) for key, value in splits.items()}
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=lambda name: loaded))


def test_hugging_face_class_names_are_kept_and_can_be_renamed(monkeypatch):
    install_fake_datasets(monkeypatch, {"train": (POS + NEG, [1] * 6 + [0] * 6),
                                        "validation": (["fine", "bad"], [1, 0])})
    data = load_text_data("user/sentiment")
    assert data.classes == ["negative", "positive"] and data.label_names == {"0": "negative", "1": "positive"}
    assert data.names_from == "the data set's ClassLabel names"
    renamed = load_text_data("user/sentiment", label_names="positive=good,negative=bad")  # keys: the data's names
    assert renamed.classes == ["bad", "good"]
