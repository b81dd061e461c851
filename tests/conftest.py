"""Shared pytest configuration: a reproducible hypothesis profile and the project's markers."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

# derandomize: every run (and every CI machine) tries the same examples, so a failure seen once
# is seen again. Set HYPOTHESIS_PROFILE=explore locally to search with fresh random examples.
settings.register_profile("deterministic", derandomize=True, deadline=None, database=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Every test starts from the same shared generator, so a model built without seed= gets the
    same weights whichever tests ran before it."""
    from backproplab import manual_seed

    manual_seed(0)


@pytest.fixture
def restore_ops() -> Iterator[None]:
    """Defining an Op subclass registers it in OPS; test_ops.py expects the table to hold exactly
    the library's ops, so every op a test defines is removed again afterwards."""
    from backproplab.autograd import OPS

    before = dict(OPS)
    yield
    OPS.clear()
    OPS.update(before)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: takes seconds rather than milliseconds; still part of the default run"
    )
