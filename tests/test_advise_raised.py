"""Association-raised alerts get the follow-up agent's advice like any other alert (transforms.agents.AdviseRaised,
wired after the streaming graph's association step): a real ZTF event routed MEDIUM, raised to HIGH by a real GCN
trigger through the store's own association, then through the step in a TestPipeline."""

from __future__ import annotations

import json
from types import SimpleNamespace

import apache_beam as beam
import sqlalchemy as sa
from apache_beam.testing.util import assert_that

from config import load_config
from core.decoders import PacketDecoder
from core.event import ALERT_LEVELS
from store.schema import events
from tests.conftest import DATA, packet_of


def _decoded(path, event_class: str):
    event = PacketDecoder(load_config().sources).decode(packet_of(path))[0]
    return event.model_copy(
        update={"event_class": event_class, "alert_level": ALERT_LEVELS[event_class], "night": "2025-09-05"}
    )


def test_an_association_raised_alert_gets_the_followup_agents_advice(store, beam_pipeline):
    config = load_config()
    optical = _decoded(DATA / "ztf" / "ztf_public_20221229_ZTF18abfkwnk_2188216843315010016.v3_3.avro", "interesting")
    trigger = _decoded(sorted((DATA / "gcn" / "json").glob("*.json"))[0], "critical")
    store.add_events([optical, trigger])
    store.add_reviews([optical])
    link = SimpleNamespace(
        trigger_id=trigger.event_id, counterpart_id=optical.event_id, separation_deg=1.0, time_offset_s=30.0
    )
    raised = store.apply_association(link)
    counterpart = next(event for event in raised if event.event_id == optical.event_id)
    assert counterpart.alert_level == "HIGH" and "followup" not in counterpart.enrichments  # before: no advice

    from transforms.agents import AdviseRaised

    def advised(found):
        (event,) = found
        followup = event.enrichments["followup"]
        assert followup["status"] == "ok" and "priority" in followup["data"], followup

    out = beam_pipeline | beam.Create([counterpart]) | AdviseRaised(config, store.url)
    assert_that(out, advised)
    beam_pipeline.run().wait_until_finish()
    with store.engine.connect() as conn:
        payload = json.loads(
            conn.execute(sa.select(events.c.payload).where(events.c.event_id == optical.event_id)).scalar()
        )
    assert payload["enrichments"]["followup"]["status"] == "ok"  # kept with the stored event
    assert payload["event_class"] == "significant"


def test_the_streaming_graph_advises_raised_alerts_before_notifying_and_publishing_them(tmp_path):
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.streaming import build_streaming_pipeline
    from store.layout import Outputs

    pipeline = beam.Pipeline(options=PipelineOptions(["--streaming"], runner="BundleBasedDirectRunner"))
    graph = build_streaming_pipeline(
        pipeline, load_config(), Outputs.under(str(tmp_path), None), "graph", "nightwatch-test"
    )
    assert graph.raised.producer.full_label.startswith("ProcessPackets/AdviseRaised/Keep")
    # `raised` is what NotifyRaised and the alerts topic consume: the advised events.
