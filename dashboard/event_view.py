"""The event behind an alert or a review item: what it is, why it was decided so, its lineage, what the agents
added (enrichments) and its cutout images from the archive tier."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import sqlalchemy as sa
import streamlit as st

from dashboard import context, ui
from store.cutouts import archived_record, cutouts_of
from store.schema import events

ENRICHMENT_BADGES = {"ok": "green", "skipped": "gray", "timeout": "orange", "error": "red"}


def load_event(event_id: str) -> dict[str, Any] | None:
    with context.store().engine.connect() as conn:
        row = conn.execute(sa.select(events).where(events.c.event_id == event_id)).first()
    if row is None:
        return None
    return {**dict(row._mapping), "data": json.loads(row.payload)}


@st.cache_data(show_spinner=False, max_entries=256)
def _cutouts(archive_root: str, event_id: str, night: str, source: str) -> tuple[str, list[tuple[str, bytes]]]:
    record = archived_record(archive_root, event_id, night, source)
    if record is None:
        return "not in the archive tier (not archived yet, or removed by retention)", []
    found = cutouts_of(record)
    if not found:
        return f"the {record['raw_format']} packet carries no cutout images", []
    return "", [(cutout.label, cutout.png) for cutout in found]


def _readable(value: Any) -> str:
    """A lineage value as text: numbers to sensible precision (a score 0.5, not 0.500000)."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        try:
            return f"{float(value):g}" if "." in value and value.replace(".", "", 1).isdigit() else value
        except ValueError:
            return value
    return str(value)


def show_cutouts(event_id: str, night: str, source: str) -> None:
    """The event's science, template and difference stamps from its archived packet, or why there are none."""
    message, images = _cutouts(context.settings().archive_root, event_id, night, source)
    if images:
        columns = st.columns(len(images))
        for column, (label, png) in zip(columns, images, strict=True):
            column.image(png, caption=label, width=160)
    else:
        st.caption(f"No cutouts: {message}.")


def enrichments_table(enrichments: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "agent": name,
                "status": result.get("status"),
                "latency": ui.number(result.get("latency_ms"), 1, "ms"),
                "reason": result.get("reason") or "",
            }
            for name, result in sorted(enrichments.items())
        ]
    )


def show_event(event_id: str) -> None:
    row = load_event(event_id)
    if row is None:
        st.warning(f"Event {event_id} is not in the hot store (removed by retention?).")
        return
    data = row["data"]
    cols = st.columns(3)
    cols[0].metric(
        "Class", data.get("event_class") or "–", help="critical, significant, interesting, routine, rejected"
    )
    cols[1].metric("Score", f"{data['score']:.2f}" if data.get("score") is not None else "–")
    cols[2].metric(
        "Magnitude", f"{data['mag']:.2f} mag ({data.get('band') or '?'})" if data.get("mag") is not None else "–"
    )
    # The position in the caption: in a metric's width the coordinates were cut off ("41.3365, +9.2…").
    where = f"RA {data['ra']:.4f}°, Dec {data['dec']:+.4f}°" if data.get("ra") is not None else "no position"
    st.caption(
        f"{data['source']} {data['kind']} · {where} · object {data.get('object_id') or '–'} · event time "
        f"{ui.iso(data['event_time'])} · received {ui.iso(data['received_time'])} · night {data.get('night')} · "
        f"position error {ui.angle(data.get('pos_error_deg'))}"
        + (" · INJECTED TEST EVENT" if data.get("injected") else "")
    )
    st.markdown("**Why:** " + "; ".join(data.get("reasons") or ["–"]))

    st.markdown("**Lineage**")
    st.dataframe(
        pd.DataFrame(
            [{"step": key, "value": _readable(value)} for key, value in sorted((data.get("lineage") or {}).items())]
        ),
        hide_index=True,
        width="stretch",
    )

    st.markdown("**Enrichments**")
    enrichments = data.get("enrichments") or {}
    if enrichments:
        st.dataframe(enrichments_table(enrichments), hide_index=True, width="stretch")
        for name, result in sorted(enrichments.items()):
            if result.get("data"):
                with st.expander(f"{name}: {result.get('status')}"):
                    st.json(result["data"])
    else:
        st.caption("No enrichments: no agent has added anything to this event.")

    st.markdown("**Cutouts**")
    show_cutouts(event_id, data.get("night") or "", data["source"])

    with st.expander("Quality and features"):
        st.json({"quality": data.get("quality"), "features": data.get("features"), "origin": data.get("origin")})
