"""Small drawing helpers shared by the pages: status badges, flash messages, running a guarded action."""

from __future__ import annotations

import io
import math
import wave
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

import streamlit as st

from access.roles import AccessError, PermissionDenied

BADGES = {
    "ok": ":green-badge[NORMAL]",
    "warn": ":orange-badge[NEAR LIMIT]",
    "bad": ":red-badge[ABNORMAL]",
    "unknown": ":gray-badge[NO DATA]",
    "n/a": ":gray-badge[N/A]",
}
SEVERITY_STYLE = {"SEV-1": st.error, "SEV-2": st.error, "SEV-3": st.warning, "SEV-4": st.info}
_FLASH = "nightwatch_flash"


def badge(status: str) -> str:
    return BADGES.get(status, status)


def flash(kind: str, message: str) -> None:
    """A message shown once, on the next run (actions rerun the page so lists show the change)."""
    st.session_state[_FLASH] = (kind, message)


def show_flash() -> None:
    kind, message = st.session_state.pop(_FLASH, (None, None))
    if kind == "success":
        st.success(message)
    elif kind == "error":
        st.error(message)


# What a user reads when the console fails unexpectedly; the detail goes to the server log (dashboard/app.py).
FRIENDLY_ERROR = (
    "Something went wrong on the server: the details are in the server log, not shown here. "
    "Try again; if it persists, tell the operators the time it happened."
)


def run_action(action: Callable[[], Any], success: str | Callable[[Any], str]) -> Any:
    """Carry out an action through access.accounts; a refusal or a bad request is shown, never raised.

    Success reruns the page with a flash message; failure shows the reason in place.
    """
    try:
        result = action()
    except PermissionDenied as exc:
        st.error(f"Refused: {exc}")
        return None
    except (AccessError, ValueError) as exc:
        st.error(str(exc))
        return None
    flash("success", success(result) if callable(success) else success)
    st.rerun()
    return result


def ago(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    if seconds < 60:
        text = f"{seconds} s"
    elif seconds < 3600:
        text = f"{seconds // 60} min"
    elif seconds < 86400:
        text = f"{seconds // 3600} h {seconds % 3600 // 60} min"
    else:
        text = f"{seconds // 86400} d {seconds % 86400 // 3600} h"
    return text


def iso(moment: Any) -> str:
    """The one time format (as the API answers): ISO 8601 in UTC with Z, to the second."""
    if moment is None or moment == "":
        return "–"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# Scores to two decimals in every table (0.50, not 0.500000).
SCORE_COLUMN = {"score": st.column_config.NumberColumn("score", format="%.2f")}


def angle(degrees: float | None) -> str:
    """An angle with a unit a reader takes in: arcsec below an arcminute, arcmin below a degree, else degrees
    (never `5.98e-05 deg`)."""
    if degrees is None:
        return "–"
    if degrees < 1 / 60:
        return f"{degrees * 3600:.2f} arcsec"
    if degrees < 1:
        return f"{degrees * 60:.2f} arcmin"
    return f"{degrees:.2f} deg"


def number(value: Any, digits: int = 2, unit: str = "") -> str:
    """A figure to `digits` decimals with its unit (never `0.500000`); – when missing."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "–" if value is None else str(value)
    return f"{value:,.{digits}f}" + (f" {unit}" if unit else "")


def when(moment: datetime | None) -> str:
    return iso(moment)


@cache
def chime() -> bytes:
    """A short two-tone chime (WAV) for a new CRITICAL alert: made here, so nothing is fetched."""
    rate, frames = 16000, bytearray()
    for frequency, seconds in ((880, 0.18), (1320, 0.28)):
        for index in range(int(rate * seconds)):
            fade = min(1.0, (rate * seconds - index) / 800)
            value = int(12000 * fade * math.sin(2 * math.pi * frequency * index / rate))
            frames += value.to_bytes(2, "little", signed=True)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return buffer.getvalue()
