"""Ranking backbones on the user's data: CLI, layers, image sizes, and `fit --backbone auto`."""
import json

import pytest

from transferkit import Forecaster, ImageClassifier, TextClassifier
from transferkit.errors import TransferkitError
from transferkit.selection.rank_backbones import rank_backbones

from ..conftest import make_image_folder
from ..tasks.test_text_classifier import sentiment_table
from ..test_cli import run_cli


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("rank") / "colours", per_class=10)


@pytest.fixture(scope="module")
def source(colours):
    return ImageClassifier.ranking_source_of(colours)


def test_rank_scores_every_candidate_and_orders_by_the_first_metric(source):
    ranking = rank_backbones(source, ["efficientnet_lite0", "mobilenetv2_100"], metrics=["logme", "leep", "knn"],
                             image_sizes=[64], progress=False)
    assert [r.backbone for r in ranking.rows] and {r.backbone for r in ranking.rows} == {"efficientnet_lite0", "mobilenetv2_100"}
    logme = [r.scores["logme"] for r in ranking.rows]
    assert logme == sorted(logme, reverse=True)
    assert all(r.scores["leep"] is not None and r.image_size == 64 for r in ranking.rows)  # ImageNet heads exist
    assert ranking.sample["examples"] == ranking.sample["of"] == 21  # small data: every training image
    assert all(r.scores["knn"] >= 0.8 for r in ranking.rows)  # colours are easy for any ImageNet backbone


def test_layers_of_one_backbone_and_missing_source_head(source):
    ranking = rank_backbones(source, ["efficientnet_lite0"], metrics=["hscore", "nce"], layers=["stage1", "stage4"],
                             image_sizes=[64], progress=False)
    assert {r.layer for r in ranking.rows} == {"stage1", "stage4"}
    assert {r.num_features for r in ranking.rows} == {24, 320}
    assert all(r.scores["nce"] is None for r in ranking.rows)  # a cut layer has no source classifier
    with pytest.raises(TransferkitError, match="no layer 'stage9'"):
        rank_backbones(source, ["efficientnet_lite0"], layers=["stage9"], progress=False)


def test_rank_cli_prints_and_writes_json(monkeypatch, capsys, colours, tmp_path):
    code, out, err = run_cli(monkeypatch, capsys, "rank", colours, "--candidates", "efficientnet_lite0,mobilenetv2_100",
                             "--metric", "logme,hscore", "--image-sizes", "64", "--out", tmp_path / "r.json", "-q")
    assert code == 0, err
    assert "best:" in out and "logme" in out
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["metric"] == "logme" and len(saved["rows"]) == 2
    code, _, err = run_cli(monkeypatch, capsys, "rank", colours, "--metric", "logmee")
    assert code == 2 and "Did you mean logme" in err


def test_fit_backbone_auto_ranks_then_fine_tunes_the_winner(colours, source, tmp_path):
    clf = ImageClassifier(backbone="auto", strategy="linear-probe", image_size=64, progress=False).fit(colours)
    ranking = clf.ranking_
    assert ranking["metric"] == "logme" and len(ranking["rows"]) >= 2
    assert ranking["sample"]["of"] == len(source.labels)  # the training split `ranking_source_of` reads
    assert clf.backbone_info_["name"] == ranking["rows"][0]["backbone"]
    decision = dict(clf.decisions_)[f"backbone: {clf.backbone_info_['name']} (auto)"]
    assert "highest logme" in decision
    clf.evaluate()
    clf.save(tmp_path / "run")
    from transferkit.reporting import write_run_report

    html = write_run_report(tmp_path / "run").read_text()
    assert "Backbone ranking" in html and "backbone ranking" in html  # section and its bar chart
    # the saved run is a candidate too, with its classifier as the source head LEEP reads
    again = rank_backbones(source, [str(tmp_path / "run")], metrics=["logme", "leep"],
                           image_sizes=[64], progress=False)
    assert again.rows[0].scores["leep"] is not None and again.rows[0].note == ""


def test_a_ranking_source_reads_the_data_as_fit_does(colours, source):
    assert source.task == "image-classification" and source.modality == "image" and source.sized
    assert list(source.classes) == sorted(p.name for p in colours.iterdir())
    # the estimator's parameters split the data as its fit would
    fewer = ImageClassifier.ranking_source_of(colours, test_fraction=0.5)
    assert len(fewer.labels) < len(source.labels)
    with pytest.raises(TransferkitError, match="needs a classification task, not forecast"):
        Forecaster.ranking_source_of(colours)


def test_text_layers_rank(tmp_path):
    table = sentiment_table(tmp_path / "t.tsv")
    text = TextClassifier.ranking_source_of(table)
    assert (text.task, text.modality, text.sized) == ("text-classification", "text", False)
    ranking = rank_backbones(text, ["all-minilm-l6-v2"], metrics=["logme", "leep"], layers=["layer0", "layer6"],
                             image_sizes=[64], progress=False)  # a size does not apply to texts: ignored
    assert all(r.image_size is None for r in ranking.rows)
    assert {r.layer for r in ranking.rows} == {"layer0", "layer6"} and all(r.num_features == 384 for r in ranking.rows)
    assert all(r.scores["leep"] is None for r in ranking.rows)  # a sentence encoder has no source classifier
    auto = TextClassifier(backbone="auto", strategy="linear-probe", progress=False).fit(table)
    assert auto.backbone_info_["name"] == "all-minilm-l6-v2"
