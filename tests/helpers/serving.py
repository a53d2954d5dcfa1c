"""Helpers of the server tests: encoded colour images, waiting for a model to be ready, and
`transferkit serve` run as a real process."""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from typing import Iterator

from transferkit.testing import COLOURS


def image_bytes(colour: str = "red", size: int = 48, fmt: str = "JPEG") -> bytes:
    """An image of one of the colour classes, encoded."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), COLOURS[colour]).save(buffer, fmt)
    return buffer.getvalue()


def wait_ready(client, seconds: float = 120) -> None:
    """Poll GET /ready until the model is loaded and warm (the app loads it in the background)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = client.get("/ready")
        if response.status_code == 200:
            return
        assert response.status_code == 503 and response.json()["status"] == "loading", response.text
        time.sleep(0.05)
    raise AssertionError(f"the model was not ready within {seconds} s")


@contextlib.contextmanager
def ready_client(app) -> Iterator:
    """A TestClient of `app` (its lifespan started) once the model is ready."""
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        wait_ready(client)
        yield client


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "transferkit.cli", "serve", *args]


class Server:
    """`transferkit serve ... --port 0` in a subprocess; `url` read from the line it prints."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.process = subprocess.Popen(serve_command(*args, "--host", "127.0.0.1", "--port", "0"), env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        assert "http://127.0.0.1:" in line, (line, self.process.stderr.read() if self.process.poll() is not None else "")
        self.url = "http://" + line.split("http://", 1)[1].split("/", 1)[0]  # http://127.0.0.1:PORT

    def wait_ready(self, seconds: float = 120) -> None:
        import httpx

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stderr.read()
            if httpx.get(f"{self.url}/ready", timeout=10).status_code == 200:
                return
            time.sleep(0.1)
        raise AssertionError(f"the server was not ready within {seconds} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
