"""The local runner fixes patch private Beam internals: they apply only to the Beam they were written for, fail
a test when the upstream source they replace changes, and can be undone."""

from __future__ import annotations

import logging

import apache_beam
import pytest
from apache_beam.runners.direct import transform_evaluator
from apache_beam.transforms import userstate

from pipeline.runners.local import dofns, guard, reader, restore_local_runner


@pytest.fixture(autouse=True)
def stock_runner():
    restore_local_runner()
    yield
    restore_local_runner()


def stock_methods() -> tuple:
    return (
        transform_evaluator._PubSubReadEvaluator.__dict__["_read_from_pubsub"],
        transform_evaluator._ParDoEvaluator.__dict__["start_bundle"],
        transform_evaluator._ParDoEvaluator.__dict__["finish_bundle"],
        transform_evaluator.TransformEvaluatorRegistry.__dict__["should_execute_serially"],
        userstate.get_dofn_specs,
    )


@pytest.mark.parametrize(
    "name, recorded",
    [*reader.UPSTREAM_SHA256.items(), *dofns.UPSTREAM_SHA256.items()],
    ids=lambda value: value.rsplit(".", 2)[-2] + "." + value.rsplit(".", 1)[-1] if "." in value else value[:8],
)
def test_upstream_source_is_the_one_the_fixes_were_written_for(name, recorded):
    assert guard.source_sha256(name) == recorded, (
        f"Beam's {name} changed: review the fix that replaces or wraps it (pipeline/runners/local), "
        "then update its UPSTREAM_SHA256 and FIXED_FOR_BEAM"
    )


def test_the_pinned_beam_is_the_one_the_fixes_were_written_for():
    assert apache_beam.__version__ == guard.FIXED_FOR_BEAM


def test_fixes_install_and_restore():
    stock = stock_methods()
    assert reader.tune_local_reader() and dofns.install_dofn_reuse()
    assert transform_evaluator._PubSubReadEvaluator._read_from_pubsub is reader._read_from_pubsub
    assert transform_evaluator._ParDoEvaluator.start_bundle is dofns._start_bundle
    assert userstate.get_dofn_specs is dofns._get_dofn_specs
    reader._batch["max_messages"] = 7
    reader.limit_in_flight(lambda: True)
    reader.pause_reading()
    restore_local_runner()
    assert stock_methods() == stock
    assert reader._batch["max_messages"] == reader.MAX_MESSAGES
    assert reader._backpressure is None and not reader._PAUSED.is_set()
    restore_local_runner()  # idempotent
    assert stock_methods() == stock


def test_another_beam_version_patches_nothing_and_warns_once(monkeypatch, caplog):
    stock = stock_methods()
    monkeypatch.setattr(apache_beam, "__version__", "9.99.0")
    monkeypatch.setattr(guard, "_warned", False)
    with caplog.at_level(logging.WARNING, logger=guard.__name__):
        assert reader.tune_local_reader() is False
        assert dofns.install_dofn_reuse() is False
        with dofns.reuse_local_dofns():
            assert stock_methods() == stock
    assert stock_methods() == stock
    warnings = [r for r in caplog.records if r.name == guard.__name__]
    assert len(warnings) == 1
    assert "9.99.0" in warnings[0].getMessage() and "NOT applied" in warnings[0].getMessage()
