"""Fixtures shared by every test module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from jaseci_like import MetaService

pytest_plugins = ["tests.server_fixtures"]


@pytest.fixture(autouse=True, scope="session")
def private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every runtime the tests start (in process or in a subprocess) keeps its
    embedded SQLite database in a temporary XDG data dir, never the user's."""
    folder = tmp_path_factory.mktemp("xdg-data")
    before = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = before


@pytest.fixture
def meta() -> Iterator[MetaService]:
    """An isolated registry, its background services stopped afterwards."""
    registry = MetaService.isolated()
    yield registry
    registry.clear(timeout=5.0)
