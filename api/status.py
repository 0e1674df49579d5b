"""The public status page: `GET /status` (HTML) and `GET /status.json`, no key, no login.

What it shows comes from ops.statuspage (each component's state in public words, the incidents not resolved and
their latest update, the latest notices): nothing internal. It is computed at most once every
`ApiSettings.status_ttl_s` seconds (15) per API process, so a visitor (or a crowd of them during an outage)
cannot make the server evaluate health per request; the HTML refreshes itself every `TTL_S` seconds.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment

from api.errors import COMMON_RESPONSES
from api.params import reject_unknown_parameters, store_of
from config.settings import load_config
from ops import statuspage

TTL_S = 15.0
router = APIRouter(
    dependencies=[Depends(reject_unknown_parameters)], responses={422: COMMON_RESPONSES[422]}, tags=["status"]
)
_lock = threading.Lock()

PAGE = Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{{ ttl }}"><title>Nightwatch status</title>
<style>
body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}
.overall{padding:1rem;border-radius:.4rem;font-size:1.2rem;font-weight:600}
.s0{background:#d8f3dc}.s1{background:#e9ecef}.s2{background:#ffe8a1}.s3{background:#ffccd5}
table{width:100%;border-collapse:collapse}td{padding:.4rem;border-bottom:1px solid #ddd}
.state{text-align:right;font-weight:600}.operational{color:#2b9348}.degraded{color:#b36b00}.outage{color:#c9184a}
.muted{color:#666;font-size:.9rem}.incident{border-left:4px solid #c9184a;padding:.2rem 1rem;margin:1rem 0}
</style></head><body>
<h1>Nightwatch status</h1>
<p class="overall s{{ rank }}">{{ status.overall }}</p>
<h2>Components</h2>
<table>{% for part in status.components %}
<tr><td>{{ part.name }}{% if part.note %} <span class="muted">({{ part.note }})</span>{% endif %}</td>
<td class="state {{ part.state }}">{{ part.state }}</td></tr>{% endfor %}
</table>
<h2>Open incidents</h2>
{% for incident in status.incidents %}<div class="incident">
<h3>{{ incident.name }} · {{ incident.severity }} · {{ incident.status }}</h3><p>{{ incident.title }}</p>
<p class="muted">Opened {{ time(incident.opened_at) }}</p>
{% if incident.latest_update %}<p><strong>Latest update</strong> ({{ time(incident.latest_update.at) }}):
{{ incident.latest_update.text }}</p>{% endif %}</div>
{% else %}<p>No open incidents.</p>{% endfor %}
{% if status.recently_resolved %}<h2>Resolved in the last 24 hours</h2><ul>
{% for incident in status.recently_resolved %}<li>{{ incident.name }} ({{ incident.severity }}): {{ incident.title }},
resolved {{ time(incident.resolved_at) }}</li>{% endfor %}</ul>{% endif %}
{% if status.notices %}<h2>Notices</h2><ul>{% for notice in status.notices %}
<li><span class="muted">{{ time(notice.at) }}</span> {{ notice.text }}</li>{% endfor %}</ul>{% endif %}
<p class="muted">Updated {{ time(status.generated_at) }} · refreshed every {{ ttl }} s ·
<a href="/status.json">JSON</a></p>
</body></html>
"""
)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_ready(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_ready(item) for item in value]
    return value


def current(request: Request) -> dict[str, Any]:
    """The page's content, recomputed when older than the settings' `status_ttl_s` (one computation at a time)."""
    state = request.app.state
    ttl = state.settings.status_ttl_s
    with _lock:
        cached = getattr(state, "status_cache", None)
        if cached is not None and time.monotonic() - cached[0] < ttl:
            return cached[1]
        if getattr(state, "status_config", None) is None:
            state.status_config = load_config()
        content = _json_ready(statuspage.status(store_of(request), state.status_config))
        state.status_cache = (time.monotonic(), content)
        return content


HEADERS = {"Cache-Control": f"public, max-age={int(TTL_S)}"}


@router.get("/status.json", tags=["status"], summary="The public status page as JSON (no key)")
def status_json(request: Request) -> JSONResponse:
    return JSONResponse(current(request), headers=HEADERS)


@router.get("/status", response_class=HTMLResponse, tags=["status"], summary="The public status page (no key)")
def status_html(request: Request) -> HTMLResponse:
    content = current(request)
    rank = {"All systems operational": 0, "Some intake paused": 1, "Degraded service": 2}.get(content["overall"], 3)

    def time_text(value: str | None) -> str:
        return (value or "").replace("T", " ").replace("Z", " UTC")

    html = PAGE.render(status=content, rank=rank, ttl=int(TTL_S), time=time_text)
    return HTMLResponse(html, headers=HEADERS)
