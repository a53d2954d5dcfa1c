"""Ranking backbones on the user's data: CLI, layers, image sizes, and `fit --backbone auto`."""
import json

import pytest

from transferkit import Forecaster, ImageClassifier, TextClassifier
from transferkit.errors import TransferkitError
from transferkit.selection.rank_backbones import DEFAULT_METRIC, ENSEMBLE, ENSEMBLE_MEMBERS, auto_metric, rank_backbones

from transferkit.testing import make_image_folder
from ..tasks.test_text_classifier import sentiment_table
from tests.helpers import run_cli


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


def test_rank_cli_defaults_to_the_auto_score_and_says_why(monkeypatch, capsys, colours):
    code, out, err = run_cli(monkeypatch, capsys, "rank", colours, "--candidates", "mnist_cnn,efficientnet_lite0",
                             "--image-sizes", "32", "-q")
    assert code == 0, err
    assert f"ordered by {DEFAULT_METRIC}" in out and "mean weighted τ" in " ".join(out.split())


def test_ensemble_and_baselines_rank_like_scores(source):
    ranking = rank_backbones(source, ["mnist_cnn", "efficientnet_lite0"], metrics=[ENSEMBLE, "params", "imagenet_top1"],
                             image_sizes=[32], progress=False)
    assert ranking.metric == ENSEMBLE and list(ranking.rows[0].scores)[0] == ENSEMBLE
    assert set(ENSEMBLE_MEMBERS) <= set(ranking.rows[0].scores)  # the members are scored and shown
    ranks = {r.backbone: r.scores[ENSEMBLE] for r in ranking.rows}
    assert sum(ranks.values()) == pytest.approx(3.0) and ranking.rows[0].scores[ENSEMBLE] >= ranking.rows[1].scores[ENSEMBLE]
    by_name = {r.backbone: r.scores for r in ranking.rows}
    assert by_name["efficientnet_lite0"]["params"] > by_name["mnist_cnn"]["params"]
    assert by_name["efficientnet_lite0"]["imagenet_top1"] == pytest.approx(75.1, abs=0.01)
    assert by_name["mnist_cnn"]["imagenet_top1"] == pytest.approx(0.0, abs=0.01)


def test_fit_backbone_auto_ranks_then_fine_tunes_the_winner(colours, source, tmp_path):
    clf = ImageClassifier(backbone="auto", strategy="linear-probe", image_size=64, progress=False).fit(colours)
    ranking = clf.ranking_
    assert ranking["metric"] == DEFAULT_METRIC == auto_metric().metric and len(ranking["rows"]) >= 2
    assert ranking["evidence"] == auto_metric().evidence()
    assert ranking["sample"]["of"] == len(source.labels)  # the training split `ranking_source_of` reads
    assert clf.backbone_info_["name"] == ranking["rows"][0]["backbone"]
    decision = dict(clf.decisions_)[f"backbone: {clf.backbone_info_['name']} (auto)"]
    assert f"highest {DEFAULT_METRIC}" in decision and auto_metric().evidence() in decision
    clf.evaluate()
    clf.save(tmp_path / "run")
    from transferkit.reporting import write_run_report

    html = write_run_report(tmp_path / "run").read_text()
    assert "Backbone ranking" in html and "backbone ranking" in html  # section and its bar chart
    assert "because it measures best" in html and "mean weighted τ" in html
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
