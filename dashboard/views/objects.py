"""Objects: the list with filters (class, last seen, magnitude, position) and one object's view: its class scores,
its light curve per band (detections, non-detections as limits, forced photometry; MJD and UTC) and its cutouts.

Everything it shows is read through `store.objects`, the same functions as the API's `/v1/objects`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from access.accounts import User
from core.event import utcnow
from dashboard import context
from dashboard.event_view import show_cutouts
from store import objects

CLASSES = ["any", *objects.CLASS_RANK]
SEEN = {
    "any time": None,
    "last 24 hours": timedelta(days=1),
    "last 7 days": timedelta(days=7),
    "last 30 days": timedelta(days=30),
}
KIND_SHAPES = {"detection": "circle", "nondetection": "triangle-down", "forced": "square"}


def _filters() -> objects.ObjectFilter:
    left, middle, right = st.columns(3)
    chosen_class = left.selectbox("Class (latest event)", CLASSES, key="objects_class")
    seen = middle.selectbox("Last seen", list(SEEN), key="objects_seen")
    low, high = right.slider("Latest magnitude", 5.0, 25.0, (5.0, 25.0), step=0.5, key="objects_mag")
    cone = st.checkbox("Only near a position (cone search)", key="objects_cone")
    ra = dec = radius = None
    if cone:
        a, b, c = st.columns(3)
        ra = a.number_input("RA (deg)", 0.0, 359.9999, 0.0, format="%.4f", key="objects_ra")
        dec = b.number_input("Dec (deg)", -90.0, 90.0, 0.0, format="%.4f", key="objects_dec")
        radius = c.number_input("Radius (deg)", 0.0001, 180.0, 1.0, format="%.4f", key="objects_radius")
    since = utcnow() - SEEN[seen] if SEEN[seen] else None
    return objects.ObjectFilter(
        event_class=None if chosen_class == "any" else chosen_class,
        seen_since=since,
        mag_min=None if low <= 5.0 else low,
        mag_max=None if high >= 25.0 else high,
        ra=ra,
        dec=dec,
        radius=radius,
    )


def scores_text(scores: dict[str, float | None]) -> str:
    return ", ".join(f"{name} {score:.2f}" if score is not None else f"{name} –" for name, score in scores.items())


def mag_text(mag: float | None, band: str | None) -> str:
    return "–" if mag is None else f"{mag:.2f} mag ({band or '?'})"


def objects_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "object": row["object_id"],
                "source": row["source"],
                "class": row["event_class"],
                "score": f"{row['score']:.2f}" if row["score"] is not None else "–",
                "latest magnitude": mag_text(row["mag"], row["band"]),
                "last seen (UTC)": row["last_seen"],
                "last seen (MJD)": f"{row['last_seen_mjd']:.5f}",
                "events": row["n_events"],
                "class scores": scores_text(row["class_scores"]),
            }
            for row in rows
        ]
    )


def points_frame(points: list[dict[str, Any]]) -> pd.DataFrame:
    """The light curve as rows to plot: a detection at its magnitude, a non-detection at its limit."""
    frame = pd.DataFrame(points)
    frame["plotted mag"] = frame["mag"].where(frame["mag"].notna(), frame["limit_mag"])
    frame["band"] = frame["band"].fillna("?")
    return frame


def light_curve_chart(frame: pd.DataFrame) -> alt.FacetChart:
    """One panel per band: magnitude (bright up) against MJD; shapes tell detections, limits and forced points."""
    shown = frame[frame["plotted mag"].notna()]
    return (
        alt.Chart(shown)
        .mark_point(filled=True, size=45)
        .encode(
            x=alt.X("mjd:Q", title="MJD (UTC)", scale=alt.Scale(zero=False), axis=alt.Axis(format=".1f")),
            y=alt.Y("plotted mag:Q", title="magnitude", scale=alt.Scale(reverse=True, zero=False)),
            color=alt.Color("band:N", title="band"),
            shape=alt.Shape(
                "kind:N",
                scale=alt.Scale(domain=list(KIND_SHAPES), range=list(KIND_SHAPES.values())),
                title="point",
            ),
            tooltip=[
                alt.Tooltip("time:N", title="UTC"),
                alt.Tooltip("mjd:Q", title="MJD", format=".5f"),
                "band:N",
                "kind:N",
                alt.Tooltip("mag:Q", format=".2f"),
                alt.Tooltip("mag_err:Q", format=".2f"),
                alt.Tooltip("limit_mag:Q", title="limit", format=".2f"),
            ],
        )
        .properties(height=180)
        .facet(row=alt.Row("band:N", title=None))
        .resolve_scale(y="independent")
    )


def points_table(frame: pd.DataFrame) -> pd.DataFrame:
    def number(value: Any, digits: int = 2) -> str:
        return "–" if value is None or pd.isna(value) else f"{value:.{digits}f}"

    return pd.DataFrame(
        {
            "MJD (UTC)": [number(v, 5) for v in frame["mjd"]],
            "UTC": frame["time"],
            "band": frame["band"],
            "kind": frame["kind"],
            "mag": [number(v) for v in frame["mag"]],
            "error": [number(v) for v in frame["mag_err"]],
            "limit": [number(v) for v in frame["limit_mag"]],
            "tier": frame["tier"],
        }
    )


def show_object(object_id: str) -> None:
    store, settings = context.store(), context.settings()
    found = objects.get_object(store.engine, object_id)
    if found is None:
        st.warning(f"No object {object_id} in the hot store.")
        return
    st.subheader(f"Object {object_id}")
    cols = st.columns(3)
    cols[0].metric("Class (latest)", found["event_class"] or "–")
    cols[1].metric("Latest magnitude", mag_text(found["mag"], found["band"]))
    cols[2].metric("Events", found["n_events"])
    # The position in a line of its own: in a metric's width, seven-decimal coordinates were cut off.
    position = f"RA {found['ra']:.5f}°, Dec {found['dec']:+.5f}°" if found["ra"] is not None else "no position"
    st.caption(
        f"{found['source']} · {position} · first seen {found['first_seen']} (MJD {found['first_seen_mjd']:.5f}) · "
        f"last seen {found['last_seen']} (MJD {found['last_seen_mjd']:.5f}) · latest event {found['latest_event_id']}"
    )
    scores = scores_text(found["class_scores"])
    st.markdown(f"**Class scores** (the best score each class gave one of its events): {scores}")
    points = objects.light_curve(store.engine, settings.warm_root, object_id)
    st.markdown("**Light curve**")
    if not points:
        st.caption("No light-curve points: its packets carried no history.")
    else:
        frame = points_frame(points)
        kinds = frame["kind"].value_counts().to_dict()
        st.caption(
            f"{len(frame)} points: "
            + ", ".join(f"{count} {kind}" for kind, count in kinds.items())
            + " · non-detections are drawn at their 5-sigma limiting magnitude (triangles)"
        )
        st.altair_chart(light_curve_chart(frame), width="stretch")
        with st.expander("Points (MJD and UTC)"):
            st.dataframe(points_table(frame), hide_index=True, width="stretch")
    st.markdown("**Cutouts** (latest event)")
    show_cutouts(found["latest_event_id"], found["night"] or "", found["source"])


def render(user: User) -> None:  # noqa: ARG001 - every role that may view events sees the same page
    st.title("Objects")
    where = _filters()
    rows = objects.list_objects(context.store().engine, where, limit=500)
    st.caption(f"{len(rows)} objects, last seen first (at most 500 shown; narrow the filters for more).")
    if not rows:
        st.info("No object matches the filters.")
        return
    st.dataframe(objects_table(rows), hide_index=True, width="stretch")
    ids = [row["object_id"] for row in rows]
    wanted = str(st.query_params.get("object", "") or "")
    if wanted and wanted not in ids:
        ids.insert(0, wanted)  # a link to an object the filters leave out still opens it
    chosen = st.selectbox("Object", ids, index=ids.index(wanted) if wanted in ids else 0, key="object_chosen")
    show_object(chosen)
