"""Alembic environment and revisions: the only way the schema changes (imports ``db`` only)."""

from __future__ import annotations

from pathlib import Path

#: The directory Alembic's ``script_location`` points at, wherever the package is installed.
SCRIPT_LOCATION = str(Path(__file__).resolve().parent)
