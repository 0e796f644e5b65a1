"""The dashboard as an earlier release had it: only some of its migrations."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

from plumbing.projection import Projection
from services.dashboard import projection as dashboard


def dashboard_with(folder: Path, keep: Callable[[str], bool]) -> Projection:
    """The dashboard's projection with only the migrations whose file names `keep` takes (copied into
    `folder`, which must not exist yet); `prepare_schema` with the projection itself applies the rest."""
    folder.mkdir()
    for migration in sorted(dashboard.MIGRATIONS.glob("*.sql")):
        if keep(migration.name):
            shutil.copy(migration, folder)
    return dataclasses.replace(dashboard.dashboard_projection(), migrations=folder)
