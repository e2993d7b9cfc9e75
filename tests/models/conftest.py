"""Fixtures of the model and batch tests."""

import pytest
from batch_support import write_image


@pytest.fixture
def folder(tmp_path):
    write_image(tmp_path / "a.png", 0)
    write_image(tmp_path / "b.png", 1)
    return tmp_path
