"""_units: byte counts as people read them (the CLI's inspect report and the dataset card)."""

from __future__ import annotations

import pytest

from hf_mediaref._units import human_bytes


@pytest.mark.parametrize(
    "size, text",
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 KB"),
        (1_536_000, "1.5 MB"),
        (3e9, "3.0 GB"),
        (2e15, "2000.0 TB"),
    ],
)
def test_human_bytes(size, text):
    assert human_bytes(size) == text
