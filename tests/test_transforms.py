"""Each processing step on its own: pure functions, then the composite PTransforms in a TestPipeline."""

from __future__ import annotations

from datetime import datetime, timezone

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from config.settings import Condition, Cut, FiltersConfig
from core.decisions import ROUTES, apply_cuts, route
from core.event import Event
from core.night import observing_night
from tests.conftest import DATA, packet_of, sample_files
from transforms.classify import Classify, classify
from transforms.common import DEAD_LETTER
from transforms.decode import DecodePackets
from transforms.filter import ApplyQualityCuts
from transforms.route import Dispatch, Route

NOW = datetime(2025, 9, 6, 5, 0, tzinfo=timezone.utc)


def optical(**overrides) -> Event:
    fields = dict(
        event_id="ztf:1",
        source="ztf",
        kind="optical_transient",
        event_time=NOW,
        received_time=NOW,
        ra=10.0,
        dec=-20.0,
        mag=17.5,
        raw=b"raw",
        raw_format="ztf-avro",
        quality={
            "rb": 0.9,
            "drb": 0.99,
            "nbad": 0,
            "fwhm": 2.0,
            "elong": 1.05,
            "abs_magdiff": 0.02,
            "isdiffpos": True,
            "ssdistnr": None,
        },
        features={"n_prior": 0, "days_since_first": 0.0, "rising_or_new": True, "star_like": False},
    )
    fields.update(overrides)
    return Event(**fields)


def grb(error: float | None, **quality) -> Event:
    position = {"ra": 100.0, "dec": 10.0, "pos_error_deg": error} if error is not None else {}
    return Event(
        event_id=f"gcn:fermi:{error}",
        source="gcn",
        kind="grb",
        event_time=NOW,
        received_time=NOW,
        raw_format="gcn-json",
        quality={"is_test": False, "is_retraction": False, "is_noise": False, **quality},
        **position,
    )


def test_condition_operators_and_missing_values():
    assert Condition(op=">=", value=0.5).holds(0.5)
    assert not Condition(op=">=", value=0.5).holds(None)
    assert not Condition(op="<", value=1).holds(float("nan"))
    assert Condition(op="not_between", value=[0, 12]).holds(20.0)
    assert not Condition(op="not_between", value=[0, 12]).holds(3.0)
    assert Condition(op="in", value=["a", "b"]).holds("a")
    assert not Condition(op="<", value=1).holds("text")  # a wrong type never matches, never raises
    with pytest.raises(ValueError):
        Condition(op="in", value=3)


def test_filter_passes_clean_event_and_rejects_with_every_reason(config):
    assert apply_cuts(optical(), config.filters).event_class is None
    bad = optical(quality=optical().quality | {"rb": 0.2, "elong": 2.0, "ssdistnr": 3.0})
    rejected = apply_cuts(bad, config.filters)
    assert rejected.event_class == "rejected"
    assert rejected.reasons == [
        "real/bogus score rb below 0.55",
        "elongated source (elong > 1.2)",
        "known solar-system object within 12 arcsec",
    ]
    assert rejected.lineage["filter_version"] == config.filters.version


def test_filter_missing_value_policy():
    cuts = FiltersConfig(
        version="t",
        ztf=[Cut(name="need", field="rb", op=">=", value=0.5, reason="no rb", if_missing="reject")],
    )
    event = optical(quality={})
    assert apply_cuts(event, cuts).reasons == ["no rb"]


def test_gcn_cuts(config):
    assert apply_cuts(grb(1.0, is_test=True), config.filters).reasons == ["test notice"]
    assert apply_cuts(grb(1.0, is_retraction=True), config.filters).event_class == "rejected"
    assert apply_cuts(grb(1.0, is_noise=True), config.filters).event_class == "rejected"


@pytest.mark.parametrize(
    ("event", "expected_class", "rule"),
    [
        (grb(1.0), "critical", "grb_localised"),
        (grb(12.0), "significant", "grb_coarse"),
        (grb(None), "significant", "grb_coarse"),
        (optical(), "significant", "bright_new_fast_riser"),
        (optical(mag=19.5), "interesting", "new_optical_transient"),
        (optical(mag=19.5, features={"days_since_first": 400.0, "star_like": True}), "routine", None),
    ],
)
def test_classification_rules(config, event, expected_class, rule):
    result = classify(event, config.classification)
    assert result.event_class == expected_class
    assert result.matched_rules == ([rule] if rule else [])
    assert result.lineage["rules_version"] == config.classification.version
    assert result.lineage["decided_by"] == (f"rule:{rule}" if rule else "default")


def test_rejected_event_keeps_its_class(config):
    rejected = apply_cuts(grb(1.0, is_test=True), config.filters)
    assert classify(rejected, config.classification).event_class == "rejected"


def test_observing_night_is_local_noon_to_noon():
    # 03:00 in Chile on 7 Sept (06:00 UTC) belongs to the night of the 6th; 13:00 local starts the 7th.
    assert observing_night(datetime(2025, 9, 7, 6, 0, tzinfo=timezone.utc), "America/Santiago") == "2025-09-06"
    assert observing_night(datetime(2025, 9, 7, 17, 0, tzinfo=timezone.utc), "America/Santiago") == "2025-09-07"


def test_route_levels_and_destinations(config):
    for event_class, (level, destination) in ROUTES.items():
        event = optical().model_copy(update={"event_class": event_class})
        routed, where = route(event, "UTC", "run-1", "0")
        assert (routed.alert_level, where) == (level, destination)
        assert routed.night == "2025-09-05" and routed.lineage["run_id"] == "run-1"


def test_decode_transform_splits_events_and_dead_letters(beam_pipeline, config):
    good = [packet_of(path) for path in sample_files("ztf/10955781158*.avro")[:3]]
    bad = [packet_of(DATA / "gcn/json/core.Pointing.example.json")]
    with beam_pipeline as p:
        outputs = p | beam.Create(good + bad) | DecodePackets(config)
        assert_that(
            outputs.events | "Ids" >> beam.Map(lambda event: event.event_id),
            equal_to([f"ztf:{path.stem}" for path in sample_files("ztf/10955781158*.avro")[:3]]),
            label="events",
        )
        assert_that(
            outputs[DEAD_LETTER] | "Why" >> beam.Map(lambda letter: (letter.stage, letter.source, letter.reason)),
            equal_to([("decode", "gcn", "GCN core schema fragment (core/Pointing), not a notice")]),
            label="dead letters",
        )


def test_filter_classify_route_transforms(beam_pipeline, config):
    events = [grb(1.0), grb(30.0), grb(1.0, is_test=True), optical(), optical(event_id="ztf:2", mag=19.9)]
    with beam_pipeline as p:
        filtered = p | beam.Create(events) | ApplyQualityCuts(config)
        classified = filtered.events | Classify(config)
        routed = (classified.events | Route(config, "run-t", "0")).events | "Dispatch" >> Dispatch()
        assert_that(
            routed.events | "Classes" >> beam.Map(lambda e: (e.event_id, e.event_class, e.alert_level)),
            equal_to(
                [
                    ("gcn:fermi:1.0", "critical", "CRITICAL"),
                    ("gcn:fermi:30.0", "significant", "HIGH"),
                    ("gcn:fermi:1.0", "rejected", "NONE"),
                    ("ztf:1", "significant", "HIGH"),
                    ("ztf:2", "interesting", "MEDIUM"),
                ]
            ),
            label="classes",
        )
        assert_that(
            routed.alerts | "A" >> beam.Map(lambda e: e.event_id),
            equal_to(["gcn:fermi:1.0", "gcn:fermi:30.0", "ztf:1"]),
            label="alerts",
        )
        assert_that(routed.review | "R" >> beam.Map(lambda e: e.event_id), equal_to(["ztf:2"]), label="review")
        assert_that(
            routed.rejected | "X" >> beam.Map(lambda e: e.event_id), equal_to(["gcn:fermi:1.0"]), label="rejected"
        )
        assert_that(routed.routine, equal_to([]), label="routine")


def test_dispatch_without_a_route_dead_letters(beam_pipeline, config):
    classified = optical().model_copy(update={"event_class": "routine"})  # classified but never routed
    with beam_pipeline as p:
        dispatched = p | beam.Create([classified]) | Dispatch()
        assert_that(dispatched.events, equal_to([]), label="no events")
        assert_that(
            dispatched[DEAD_LETTER] | beam.Map(lambda letter: (letter.stage, "without a route" in letter.reason)),
            equal_to([("dispatch", True)]),
            label="dead letter",
        )


def test_a_failing_step_dead_letters_instead_of_raising(beam_pipeline, config):
    unclassified = optical()  # skipped classification: routing must fail, and say so
    with beam_pipeline as p:
        routed = p | beam.Create([unclassified]) | Route(config, "run-t", "0")
        assert_that(routed.events, equal_to([]), label="no events")
        assert_that(
            routed[DEAD_LETTER]
            | beam.Map(
                lambda letter: (letter.stage, letter.event_id, letter.payload, "without a class" in letter.reason)
            ),
            equal_to([("route", "ztf:1", b"raw", True)]),
            label="dead letter",
        )
