"""Dead letters: what could not be processed, by source, stage, reason and night, and each letter's detail (the
error-rate runbook's "read their stage and reason"). Read-only: re-driving is a job, run from the command line
(`nightwatch dead-letters redrive`), which this page shows ready to copy. Queries live in store/deadletters.py."""

from __future__ import annotations

import base64
import re

import pandas as pd
import streamlit as st

from access.accounts import User
from dashboard import context, ui
from store import deadletters

GROUPINGS = list(deadletters.STAT_KEYS)


def _filters() -> deadletters.LetterFilter:
    columns = st.columns(5)
    source = columns[0].selectbox("Source", ["any", "ztf", "rubin", "gcn"], key="dl_source")
    stage = columns[1].text_input("Stage (decode, sink:events, ...)", key="dl_stage").strip()
    reason = columns[2].text_input("Reason contains", key="dl_reason").strip()
    night = columns[3].text_input("Night (YYYY-MM-DD)", key="dl_night").strip()
    status = columns[4].selectbox("Status", list(deadletters.STATUSES), key="dl_status")
    return deadletters.LetterFilter(
        source=None if source == "any" else source,
        stage=stage or None,
        reason=reason or None,
        night=night or None,
        status=status,
        timezone=context.config().sources.site.timezone,
    )


def render(user: User) -> None:
    st.title("Dead letters")
    store = context.store()
    try:
        where = _filters()
        by = st.multiselect("Count by", GROUPINGS, default=["source", "stage", "reason"], key="dl_by") or GROUPINGS
        groups = deadletters.stats(store, where, tuple(by))
        rows = deadletters.list_letters(store, where, limit=200)
    except ValueError as exc:  # a night that is not a date: say so, show nothing
        st.error(str(exc))
        return
    total = sum(group["count"] for group in groups)
    st.metric("Letters matching", f"{total:,}")
    st.subheader("Counts")
    if groups:
        st.dataframe(
            pd.DataFrame(
                [
                    {**{name: group[name] for name in by}, "count": group["count"], "last": ui.when(group["last"])}
                    for group in groups
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    else:
        st.caption("No dead letters match.")
    st.subheader("Letters (newest first, at most 200)")
    if not rows:
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "id": row["dead_letter_id"],
                    "status": row["status"],
                    "source": row["source"],
                    "stage": row["stage"],
                    "night": row["night"],
                    "stored": ui.when(row["stored_at"]),
                    "bytes": row["payload_bytes"],
                    "reason": row["reason"],
                }
                for row in rows
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    chosen = st.selectbox("Letter", [row["dead_letter_id"] for row in rows], key="dl_letter")
    letter = deadletters.get_letter(store, chosen, where.timezone)
    if letter is None:
        return
    st.markdown(f"**{letter['source']} · {letter['stage']} · {letter['status']}** — {letter['reason']}")
    st.caption(
        f"origin {letter['origin'] or '-'} · event {letter['event_id'] or '-'} · received "
        f"{ui.when(letter['received_time'])} · night {letter['night']} · {len(letter['payload'])} bytes kept"
    )
    st.code(base64.b16encode(letter["payload"][:96]).decode().lower() or "(no bytes)", language=None)
    st.download_button("Download the raw bytes", letter["payload"], file_name=f"{chosen.replace(':', '_')}.bin")
    # The reason's leading words, before any particular (a number, a quoted value): what its siblings share.
    hint = re.split(r"[:'\"0-9]", letter["reason"])[0].strip()[:40]
    command = f"nightwatch dead-letters redrive --stage {letter['stage']}" + (f" --reason '{hint}'" if hint else "")
    st.markdown("After fixing the cause, re-drive (an Operator, from the command line; `--dry-run` first):")
    st.code(command + " --dry-run --as YOU", language="bash")
