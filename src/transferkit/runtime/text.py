"""Texts as an exported text model reads them: token ids and attention masks from the run's own
tokenizer (its tokenizer.json, embedded in the model file), read by the `tokenizers` library alone."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import DataError, MissingDependencyError


class TokenEncoder:
    """The run's tokenizer with the estimator's settings: special tokens added, texts truncated to
    `max_length` tokens and each batch padded to its longest text (as `TokenCollator` does)."""

    def __init__(self, tokenizer_json: str, max_length: int, pad_id: int, pad_token: str) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise MissingDependencyError("text models need the tokenizers library: pip install tokenizers") from None
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.tokenizer.enable_truncation(max_length=int(max_length))
        self.tokenizer.enable_padding(pad_id=int(pad_id), pad_token=pad_token)
        self.max_length = int(max_length)

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """{"input_ids", "attention_mask"}: int64 arrays (N, longest text in tokens)."""
        encoded = self.tokenizer.encode_batch(list(texts))
        return {"input_ids": np.asarray([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.asarray([e.attention_mask for e in encoded], dtype=np.int64)}


def check_texts(texts: Sequence[object]) -> list[str]:
    """The texts, each a non-empty string (as the estimator requires), else one line naming the first bad one."""
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise DataError(f"text #{bad[0] + 1} is empty or not a string; every input must be non-empty text.")
    return list(texts)


#: Column names read as the text column of a table (the estimator's `data.text.TEXT_NAMES`)
TEXT_NAMES = ("text", "sentence", "sentences", "review", "content", "document", "comment", "body", "tweet",
              "utterance", "question")


def read_texts(path: Path, text_column: str | None = None) -> list[str]:
    """Texts of a plain file, one per non-empty line, or of a table's text column: a .csv/.tsv
    (`text_column`, else the first column named like `TEXT_NAMES`, else the one with the longest
    texts) or a .txt whose every line holds a tab ("sentence<TAB>label", as `fit` reads it)."""
    return [text for piece in iter_texts(path, text_column) for text in piece]


def iter_texts(path: Path, text_column: str | None = None, rows: int = 10_000) -> Iterator[list[str]]:
    """`read_texts` `rows` at a time, reading the file as it goes (a file far larger than memory
    streams through `predict`); a table's text column is chosen from its first `rows` rows."""
    import csv
    from itertools import islice

    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no such file; pass a file of texts, one per line.")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        raise DataError(f"{path}: JSON tables are read by the full install (`transferkit predict RUN`); pass an "
                        "exported model the texts one per line, or as a CSV.")
    try:
        with open(path, encoding="utf-8", newline="") as f:
            if suffix in (".csv", ".tsv"):
                reader = (r for r in csv.reader(f, delimiter="\t" if suffix == ".tsv" else ",") if r)
                header = [h.strip() for h in next(reader, [])]
                first = list(islice(reader, rows))
                if not header or not first:
                    raise DataError(f"{path}: a table needs a header row and at least one text row.")
                lowered = {h.lower(): i for i, h in enumerate(header)}
                if text_column is not None and text_column in header:
                    column = header.index(text_column)
                else:
                    column = next((lowered[n] for n in TEXT_NAMES if n in lowered), None)
                if column is None:  # the column with the longest texts, as the estimator picks it
                    lengths = [sum(len(r[i]) for r in first if len(r) > i) for i in range(len(header))]
                    column = max(range(len(header)), key=lengths.__getitem__)
                piece = first
                while piece:
                    yield [r[column].strip() for r in piece if len(r) > column and r[column].strip()]
                    piece = list(islice(reader, rows))
                return
            lines = (line.strip() for line in f if line.strip())
            first = list(islice(lines, rows))
            tabbed = suffix == ".txt" and first and all("\t" in line for line in first)  # "sentence<TAB>label"
            piece = first
            while piece:
                yield [line.split("\t", 1)[0].strip() for line in piece] if tabbed else piece
                piece = list(islice(lines, rows))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; re-save the file as UTF-8.") from None
