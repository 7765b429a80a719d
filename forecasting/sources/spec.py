"""Parsing of a data-source spec (``yfinance``, ``csv:DIR``, ``sample``) without side effects."""

from __future__ import annotations

from pathlib import Path
from typing import Final

SOURCE_KINDS: Final = ("yfinance", "csv", "sample")


def parse_source_spec(spec: str) -> str:
    """Return ``spec`` normalised if it names a usable source, else raise ``ValueError``.

    ``csv:DIR`` must name an existing directory: a typo in the path should stop start-up, not make
    every ingest job fail later.
    """
    text = spec.strip()
    if text in ("yfinance", "sample"):
        return text
    if text.startswith("csv:"):
        directory = text.removeprefix("csv:")
        if not directory:
            raise ValueError("csv source needs a directory: csv:DIR")
        if not Path(directory).is_dir():
            raise ValueError(f"csv source directory {directory!r} does not exist")
        return f"csv:{directory}"
    raise ValueError("expected yfinance, csv:DIR or sample")
