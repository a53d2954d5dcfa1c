"""The server's limits and micro-batching settings, declared once: `create_app` takes them as
keyword arguments and `transferkit serve` builds its options' defaults from them (no FastAPI import)."""
from __future__ import annotations

from dataclasses import dataclass

MB = 2**20


@dataclass(frozen=True)
class ServeSettings:
    """Defaults of the server's limits (see `create_app` for what each does)."""

    max_body_bytes: int = 8 * MB  # 413 above it
    max_batch: int = 32  # most images or texts in one request (413 above it)
    timeout_s: float = 30.0  # a request's time limit, queue and model call together (503 after it)
    batch_max_size: int = 32  # most items one model call gathers from concurrent requests
    batch_max_wait_ms: float = 5.0  # how long a model call waits for more requests after the first
    max_queue: int = 256  # requests that may wait (503 beyond)


DEFAULTS = ServeSettings()
