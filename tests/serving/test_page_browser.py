"""The server's page in headless Chromium, driven by Playwright as a user would use it: the run's
summary, an image uploaded through the file input and another dropped on the drop box, the class
the page shows equal to the API's answer, an API error shown in words, and a screenshot.

Skipped where Playwright or Chromium is missing (Debian: `apt-get install chromium`, `.ci/run`
installs it); Playwright drives the system Chromium, it downloads no browser."""
from __future__ import annotations

import base64
import shutil

import numpy as np
import pytest
from PIL import Image

from transferkit.rundir import read_metrics

from tests.helpers.serving import Server, image_bytes

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
httpx = pytest.importorskip("httpx")
CHROMIUM = next((path for path in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if path), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH (Debian: apt-get install chromium; "
                                                          ".ci/run installs it)")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def server(image_run):
    running = Server(str(image_run))
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage"])
        yield launched
        launched.close()


def drop(page, selector: str, name: str, data: bytes, kind: str) -> None:
    """Drop a file on `selector` as a user dragging it from a file manager would (a drop event
    whose DataTransfer holds the file)."""
    transfer = page.evaluate_handle(
        """([name, b64, kind]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, {type: kind}));
            return transfer;
        }""", [name, base64.b64encode(data).decode(), kind])
    page.dispatch_event(selector, "dragover", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def test_upload_an_image_and_read_the_predicted_class(server, browser, image_run, tmp_path):
    api = httpx.post(f"{server.url}/predict?top_k=3", files={"file": ("red.jpg", image_bytes("red"))}).json()
    (expected,) = api["predictions"]
    metrics = read_metrics(image_run).metrics
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    messages = []
    page.on("console", lambda message: messages.append(message.text) if message.type == "error" else None)
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready=yes]", timeout=60_000)

    # the summary: run name, task and backbone, the headline metric, the classes, a report link
    assert page.text_content("#run-name") == image_run.name
    facts = page.text_content("#run-facts")
    assert "image-classification" in facts and "efficientnet_lite0" in facts and "torch" in facts
    assert page.text_content("[data-metric=accuracy] .big") == f"{100 * metrics['accuracy']:.1f}%"
    assert page.locator("#classes .chip").all_text_contents() == ["blue", "green", "red"]
    assert page.get_attribute("#report-link", "href") == "/report" and page.is_visible("#report-link")

    # upload through the file input: a thumbnail, the predicted class and its top-3 bars
    image = tmp_path / "red.jpg"
    image.write_bytes(image_bytes("red"))
    page.set_input_files("#image-input", str(image))
    page.wait_for_selector("#results .prediction", timeout=60_000)
    card = page.locator("#results .prediction").first
    assert card.locator(".label").text_content() == expected["label"]
    assert card.locator(".input").text_content() == "red.jpg"
    shown = [(bar.get_attribute("data-label"), float(bar.get_attribute("data-probability")))
             for bar in card.locator(".bar").all()]
    assert shown == [(t["label"], t["probability"]) for t in expected["top_k"]]
    assert card.locator("img").evaluate("img => img.complete && img.naturalWidth") > 0  # the thumbnail decoded
    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot), full_page=True)

    # drop another image on the box: the page answers for it, as the API does
    blue = image_bytes("blue", fmt="PNG")
    (want_blue,) = httpx.post(f"{server.url}/predict", files={"file": ("blue.png", blue)}).json()["predictions"]
    drop(page, "#drop", "blue.png", blue, "image/png")
    page.wait_for_selector("#results .prediction .input:text-is('blue.png')", timeout=60_000)
    assert page.text_content("#results .prediction .label") == want_blue["label"]

    # a file that is not an image: the API's error, in words, on the page
    drop(page, "#drop", "broken.jpg", b"definitely not a jpeg", "image/jpeg")
    page.wait_for_selector("#error:not([hidden])", timeout=60_000)
    assert page.text_content("#error") == "400: broken.jpg: not a readable image; convert it to JPEG/PNG or remove it."
    assert not [m for m in messages if "Failed to load resource" not in m], messages  # no script errors
    page.close()

    png = shot.read_bytes()
    assert png.startswith(PNG_MAGIC)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.shape[1] == 1100 and pixels.shape[0] >= 600
    # text, cards and bars: many rows hold ink, and the page is not one flat colour
    assert (pixels < 128).any(axis=1).mean() > 0.1 and pixels.std() > 10
