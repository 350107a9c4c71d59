"""Fixtures shared by every test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jaseci_like import MetaService


@pytest.fixture
def meta() -> Iterator[MetaService]:
    """An isolated registry, its background services stopped afterwards."""
    registry = MetaService.isolated()
    yield registry
    registry.clear(timeout=5.0)
