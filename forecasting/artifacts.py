"""A trained model as two plain files: the weights as safetensors and the metadata as JSON.

Nothing here unpickles anything: safetensors holds only tensors, and the metadata holds everything
else needed to rebuild and use the network (configs, scalers, conformal half-widths, data range,
metrics, library versions). No torch or Lightning import here either; the predictor reads it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Self

from forecasting.errors import PortableError

WEIGHTS_FILE: Final = "weights.safetensors"
METADATA_FILE: Final = "metadata.json"
#: Bumped when the metadata layout changes in a way old readers cannot follow.
FORMAT_VERSION: Final = 1
REQUIRED_KEYS: Final = ("format_version", "model_kind", "model_config", "network", "scalers")


class InvalidArtifactError(PortableError, ValueError):
    """An artifact directory or payload that cannot be a stockcast model."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"invalid model artifact: {problem}")
        self.problem = problem


def _check_json_safe(value: Any, where: str) -> None:
    """Metadata must survive JSON unchanged, or a reloaded model would differ from the saved one."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArtifactError(f"{where} is {value!r}, which JSON cannot hold")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidArtifactError(f"{where} has a non-string key {key!r}")
            _check_json_safe(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json_safe(item, f"{where}[{index}]")
    elif value is not None and not isinstance(value, str | int | float | bool):
        raise InvalidArtifactError(f"{where} holds a {type(value).__name__}, not a JSON value")


@dataclass(frozen=True, kw_only=True)
class ModelArtifact:
    """The portable form of a fitted LSTM; picklable plain values, so it can leave a child process.

    ``weights`` are the bytes of a safetensors file; ``metadata`` a JSON-safe dict.
    """

    weights: bytes
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.weights, bytes) or not self.weights:
            raise InvalidArtifactError("weights must be the non-empty bytes of a safetensors file")
        missing = [key for key in REQUIRED_KEYS if key not in self.metadata]
        if missing:
            raise InvalidArtifactError(f"metadata lacks {', '.join(missing)}")
        version = self.metadata["format_version"]
        if version != FORMAT_VERSION:
            raise InvalidArtifactError(
                f"format_version {version!r} is not supported (expected {FORMAT_VERSION})"
            )
        _check_json_safe(self.metadata, "metadata")

    @property
    def metadata_json(self) -> str:
        return json.dumps(self.metadata, indent=2, sort_keys=True)

    def write_dir(self, path: str | Path) -> Path:
        """Write both files into ``path`` (created if missing); returns the directory."""
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / WEIGHTS_FILE).write_bytes(self.weights)
        (directory / METADATA_FILE).write_text(self.metadata_json + "\n", encoding="utf-8")
        return directory

    @classmethod
    def read_dir(cls, path: str | Path) -> Self:
        """Read an artifact written by :meth:`write_dir`."""
        directory = Path(path)
        weights_path = directory / WEIGHTS_FILE
        metadata_path = directory / METADATA_FILE
        for required in (weights_path, metadata_path):
            if not required.is_file():
                raise InvalidArtifactError(f"{required.name} is missing in {directory}")
        try:
            metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidArtifactError(f"{METADATA_FILE} is not JSON ({exc})") from None
        if not isinstance(metadata, dict):
            raise InvalidArtifactError(f"{METADATA_FILE} must hold a JSON object")
        return cls(weights=weights_path.read_bytes(), metadata=metadata)


def library_versions() -> dict[str, str]:
    """Versions that produced an artifact, read from package metadata (importing nothing)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in ("torch", "lightning", "numpy", "safetensors", "stockcast"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "unknown"
    return versions
