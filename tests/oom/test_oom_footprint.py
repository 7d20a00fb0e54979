"""The footprint model and its resident-memory holder."""

from __future__ import annotations

import pytest

from paychaos.stack.footprint import (
    GIB,
    MIB,
    MODELS,
    ResidentMemory,
    Traffic,
    model_for,
    next_hold,
    own_rss_bytes,
    parse_accepted,
)


def test_models_cite_or_admit() -> None:
    for model in MODELS.values():
        assert model.sources or model.assumptions, model.component
    assert MODELS["grafana"].bytes_for(Traffic()) == 512 * MIB
    alloy = MODELS["alloy"]
    one_million = Traffic(active_series=1e6)
    assert alloy.bytes_for(one_million) - alloy.bytes_for(Traffic()) == 11 * GIB
    tempo = MODELS["tempo"]
    spans = Traffic(spans_per_s=2**20 / 500)  # 1 MiB/s of 500-byte spans
    assert tempo.bytes_for(spans) - tempo.base_bytes == pytest.approx(GIB, rel=1e-6)
    assert tempo.bytes_for(spans, scale=0.5) == pytest.approx(tempo.bytes_for(spans) / 2, abs=1)
    with pytest.raises(ValueError, match="unknown modelled component 'nope'"):
        model_for("nope")


def test_parse_accepted() -> None:
    text = (
        "# HELP collector_items_accepted_total Items stored\n"
        'collector_items_accepted_total{signal="spans"} 120.0\n'
        'collector_items_accepted_total{signal="logs"} 7.0\n'
        'collector_items_rejected_total{signal="spans",reason="x"} 3.0\n'
    )
    assert parse_accepted(text) == {"spans": 120.0, "logs": 7.0}


def test_next_hold_grows_at_once_and_shrinks_slowly() -> None:
    assert next_hold(100, 200, 1.0) == 200
    assert next_hold(1000, 0, 1.0) == 950
    assert next_hold(1000, 990, 1.0) == 990


def test_resident_memory_is_resident() -> None:
    before = own_rss_bytes()
    held = ResidentMemory(chunk_bytes=MIB)
    held.resize(16 * MIB)
    assert held.held_bytes == 16 * MIB
    assert own_rss_bytes() - before >= 15 * MIB
    held.resize(0)
    assert held.held_bytes == 0
