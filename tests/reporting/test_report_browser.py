"""Each task's report as a browser shows it: headless Chromium renders report.html of a tiny real
run (image, text, forecast), and the DOM it builds must hold the summary, the verdict and the plots
(decoded by the browser, not only present in the file). Skipped where no Chromium is installed
(Debian: `apt-get install chromium`; `.ci/run` installs it)."""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from transferkit import Forecaster, ImageClassifier, TextClassifier
from transferkit.diagnostics.transfer_gain import verdict_headline
from transferkit.reporting import REPORT_FILE, write_run_report
from transferkit.rundir import read_metrics

from transferkit.testing import make_image_folder
from ..tasks.test_forecaster import series_csv
from ..tasks.test_text_classifier import sentiment_table

CHROMIUM = next((path for path in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if path), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH (Debian: apt-get install chromium; "
                                                          ".ci/run installs it)")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Appended to a copy of the report: once the page has loaded, record the size each <img> decoded
# to, so the dumped DOM says whether the browser could show the plot.
DECODED_SIZES = ("<script>addEventListener('load', () => { for (const img of document.images) { "
                 "img.dataset.decodedWidth = img.naturalWidth; img.dataset.decodedHeight = img.naturalHeight; } "
                 "document.body.dataset.loaded = 'yes'; });</script>")


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list["Node"] = field(default_factory=list)
    content: list = field(default_factory=list)  # text and child nodes, in document order

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def all_text(self) -> str:
        return " ".join(" ".join(c if isinstance(c, str) else c.all_text() for c in self.content).split())

    def find(self, tag: str, **attrs: str) -> list["Node"]:
        """Descendants with this tag whose attributes hold these values (class: one of its classes)."""
        found = []
        for child in self.children:
            if child.tag == tag and all(v in child.classes() if k == "class_" else child.attrs.get(k) == v
                                        for k, v in attrs.items()):
                found.append(child)
            found += child.find(tag, **attrs)
        return found


class TreeBuilder(HTMLParser):
    """The element tree of Chromium's serialised DOM (well-formed: every element it opens it closes)."""

    VOID = {"meta", "img", "br", "hr", "link", "input", "source", "col", "area", "base", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        self.stack[-1].content.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data):
        self.stack[-1].content.append(data)


def chromium(args: list[str], page: Path, tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp / 'profile'}", "--virtual-time-budget=10000", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120)


def browser_dom(report: Path, tmp: Path) -> Node:
    """The DOM headless Chromium builds from `report` once the page has loaded."""
    page = tmp / "page.html"
    page.write_text(report.read_text(encoding="utf-8").replace("</body>", DECODED_SIZES + "</body>"),
                    encoding="utf-8")
    done = chromium(["--dump-dom"], page, tmp)
    assert done.returncode == 0, done.stderr[-2000:]
    builder = TreeBuilder()
    builder.feed(done.stdout)
    body = builder.root.find("body")
    assert body and body[0].attrs.get("data-loaded") == "yes", "the page did not finish loading"
    return body[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One tiny real run per task, saved with its report (linear probes and one epoch, for speed)."""
    root = tmp_path_factory.mktemp("browser")
    estimators = {
        "image-classification": (ImageClassifier(strategy="linear-probe", image_size=64, batch_size=8, progress=False),
                                 make_image_folder(root / "colours", per_class=12)),
        "text-classification": (TextClassifier(strategy="linear-probe", batch_size=8, val_fraction=0.2,
                                               test_fraction=0.25, progress=False),
                                sentiment_table(root / "reviews.tsv")),
        "forecast": (Forecaster(lookback=48, horizon=12, epochs=1, target="load", progress=False),
                     series_csv(root / "load.csv")),
    }
    out = {}
    for task, (est, data) in estimators.items():
        run = root / task
        est.fit(data).evaluate()
        est.save(run)
        write_run_report(run)
        out[task] = run
    return out


@pytest.mark.parametrize("task, plot", [("image-classification", "confusion matrix"),
                                        ("text-classification", "confusion matrix"),
                                        ("forecast", "forecast vs actual")])
def test_report_shows_summary_verdict_and_plots_in_a_browser(runs, task, plot, tmp_path):
    run = runs[task]
    metrics = read_metrics(run).metrics
    body = browser_dom(run / REPORT_FILE, tmp_path)

    # the summary: the title and the headline metric cards, with this run's figures
    header = body.find("header")[0]
    assert header.find("h1")[0].all_text()
    cards = {c.find("div", class_="label")[0].all_text(): c.find("div", class_="big")[0].all_text()
             for c in header.find("div", class_="card")}
    if task == "forecast":
        assert cards["MSE (standardised)"] == f"{metrics['mse']:.4f}"
    else:
        assert cards["accuracy"] == f"{100 * metrics['accuracy']:.1f}%"

    # the verdict: the transfer check against the from-scratch control (classification) or the
    # comparison with the baselines (forecast), in its section
    sections = {s.attrs.get("id"): s for s in body.find("section")}
    if task == "forecast":
        said = [p.all_text() for name in ("metrics", "transfer-check") if name in sections
                for p in sections[name].find("p") if p.classes() & {"good", "bad", "neutral", "plain"}]
        assert any("baseline" in s for s in said), said
    else:
        check = metrics["transfer"]
        (verdict,) = sections["transfer-check"].find("p", class_="verdict")
        assert verdict.attrs["data-verdict"] == check["verdict"]
        assert verdict.all_text().startswith(verdict_headline(check))
        advice = sections["transfer-check"].find("ul", class_="advice")
        assert len(advice) == (1 if check.get("advice") else 0)

    # the plots: inline PNGs of real size, which the browser decoded
    images = body.find("img")
    assert plot in {img.attrs.get("alt") for img in images}
    for img in images:
        src = img.attrs["src"]
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png.startswith(PNG_MAGIC) and len(png) > 5_000, img.attrs.get("alt")
        assert int(img.attrs["data-decoded-width"]) > 200 and int(img.attrs["data-decoded-height"]) > 100


def test_image_report_screenshot_is_a_rendered_page(runs, tmp_path):
    shot = tmp_path / "report.png"
    done = chromium(["--hide-scrollbars", "--window-size=1100,3000", f"--screenshot={shot}"],
                    runs["image-classification"] / REPORT_FILE, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.shape == (3000, 1100)
    # text, tables and plots: many rows hold ink, and the page is not one flat colour
    inked_rows = (pixels < 128).any(axis=1).mean()
    assert inked_rows > 0.2 and pixels.std() > 10


def test_adapted_run_shows_its_adaptation_section_and_plots_in_a_browser(adapted_run, tmp_path):
    settings = json.loads((adapted_run / "config.json").read_text())["strategy"]["settings"]
    body = browser_dom(adapted_run / REPORT_FILE, tmp_path)
    (section,) = [s for s in body.find("section") if s.attrs.get("id") == "domain-adaptation"]
    (kept,) = section.find("tr", class_="kept")
    assert kept.all_text().startswith(f"{settings['chosen_method']} ✓ kept")
    assert len(section.find("tbody")[0].find("tr")) == len(settings["candidates"])
    images = {img.attrs.get("alt"): img for img in section.find("img")}
    assert set(images) == {"source and target features before and after", "DEV score per epoch"}
    for img in images.values():
        assert int(img.attrs["data-decoded-width"]) > 300 and int(img.attrs["data-decoded-height"]) > 200
