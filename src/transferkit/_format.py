"""Small wording helpers for what transferkit prints and writes in reports."""
from __future__ import annotations


def counted(n: int | float, noun: str, plural: str | None = None) -> str:
    """`1 epoch`, `2 epochs`, `0 examples`: the count with the noun in the right number."""
    word = noun if n == 1 else plural or f"{noun}s"
    return f"{n:g} {word}" if isinstance(n, float) else f"{n} {word}"
