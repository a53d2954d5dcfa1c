"""`transferkit serve` as a user runs it: a real uvicorn server in a subprocess on 127.0.0.1,
concurrent clients batched into shared model calls, Ctrl-C, and the command's one-line errors."""
from __future__ import annotations

import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn", reason="the server needs the serve extra (pip install 'transferkit[serve]')")

from tests.helpers.serving import Server, image_bytes, serve_command  # noqa: E402

CLIENTS = 8


@pytest.fixture(scope="module")
def server(image_run):
    """The image run served with model calls of up to CLIENTS items, each waiting long enough for
    every concurrent request to join it (a full batch runs at once, so the wait costs nothing)."""
    running = Server(str(image_run), "--batch-size", str(CLIENTS), "--batch-wait-ms", "3000")
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def test_concurrent_requests_share_model_calls(server):
    """CLIENTS clients post one image each at the same moment: one model call answers them all,
    each with its own top_k, and the answers equal those of the same images in one request."""
    colours = ["red", "green", "blue"]
    together = httpx.post(f"{server.url}/predict?top_k=3", timeout=60,  # a full batch: runs at once
                          files=[("file", (f"{colours[n % 3]}.jpg", image_bytes(colours[n % 3]))) for n in range(CLIENTS)])
    alone = {record["file"].removesuffix(".jpg"): record for record in together.json()["predictions"]}
    before = httpx.get(f"{server.url}/stats").json()
    start = threading.Barrier(CLIENTS)
    answers: dict[int, httpx.Response] = {}

    def client(n: int) -> None:
        colour = colours[n % 3]
        start.wait()
        answers[n] = httpx.post(f"{server.url}/predict?top_k={1 + n % 3}",
                                files={"file": (f"{colour}.jpg", image_bytes(colour))}, timeout=60)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    after = httpx.get(f"{server.url}/stats").json()

    assert sorted(answers) == list(range(CLIENTS))
    for n, response in answers.items():
        assert response.status_code == 200, response.text
        (record,) = response.json()["predictions"]
        want = alone[colours[n % 3]]
        assert record["label"] == want["label"] and record["top_k"] == want["top_k"][:1 + n % 3]
    assert after["requests"] - before["requests"] == CLIENTS
    assert after["items"] - before["items"] == CLIENTS
    assert after["model_calls"] - before["model_calls"] == 1, after
    assert after["largest_batch"] == CLIENTS


def test_the_server_answers_health_while_a_batch_waits(server):
    """The event loop stays free while a model call gathers requests: /health answers during the
    3 s a lone request waits for company."""
    waiting = threading.Thread(target=httpx.post, args=(f"{server.url}/predict",),
                               kwargs={"files": {"file": ("red.jpg", image_bytes("red"))}, "timeout": 60})
    waiting.start()
    try:
        for _ in range(3):
            assert httpx.get(f"{server.url}/health", timeout=2).json() == {"status": "ok"}
        assert waiting.is_alive()  # still gathering: the health checks did not wait for it
    finally:
        waiting.join(60)


def test_ctrl_c_stops_the_server_cleanly(server):
    """Last of the module's tests on `server`: it stops it (starting another costs seconds)."""
    server.process.send_signal(signal.SIGINT)
    out, err = server.process.communicate(timeout=60)
    assert server.process.returncode in (0, 130), err
    assert "Traceback" not in err, err
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/health", timeout=2)


def run_serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(serve_command(*args), capture_output=True, text=True, timeout=120)


def error_line(done: subprocess.CompletedProcess) -> str:
    """The command's error: exit status 2 and one line starting with `error:`, no traceback."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and "Traceback" not in done.stderr, done.stderr
    return lines[-1]


def test_serve_errors_are_one_line_with_status_2(image_run, tmp_path: Path):
    assert "no such run directory" in error_line(run_serve(str(tmp_path / "missing"), "--port", "0"))
    assert "not a transferkit run" in error_line(run_serve(str(tmp_path), "--port", "0"))
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert "not a run directory or an .onnx file" in error_line(run_serve(str(notes), "--port", "0"))
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not a model")
    assert str(fake) in error_line(run_serve(str(fake), "--port", "0"))
    with socket.socket() as taken:  # a port another program listens on
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = error_line(run_serve(str(image_run), "--port", str(port)))
    assert f"127.0.0.1:{port}" in line and "--port" in line


def test_listening_beyond_loopback_warns(tmp_path: Path):
    done = run_serve(str(tmp_path / "missing"), "--host", "0.0.0.0", "--port", "0")
    assert "warning: listening on 0.0.0.0" in done.stderr and "127.0.0.1" in done.stderr
    error_line(done)
