"""GET /runbooks/{key}: the guide's runbooks as pages, where alert rules and pages link (no key needed).

Prometheus rules (deploy/prometheus/rules.yml) carry a `runbook_url` that an on-call engineer opens from a page
on a phone, with no API key at hand; the runbooks are the guide's procedures, nothing secret. The JSON form is
at /v1/runbooks/{key} for tools.
"""

from __future__ import annotations

import html
from functools import cache
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.errors import ApiError
from api.params import Ident  # bounded, no NUL: like every other path parameter
from config.contacts import ContactsConfig
from config.runbooks import RunbookSpec, load_runbooks
from config.settings import load_config

router = APIRouter()  # under /v1: JSON
pages = APIRouter()  # at the root: HTML, the target of the alert rules' runbook_url


@cache
def _runbooks() -> dict[str, RunbookSpec]:
    return dict(load_runbooks().runbooks)  # the configured folder ($NIGHTWATCH_CONFIG_DIR) or the shipped one


@cache
def _contacts() -> ContactsConfig:
    return load_config().contacts  # the configured folder's contacts.yaml (or the shipped one)


def _whom(spec: RunbookSpec) -> list[str]:
    """Whom the runbook calls for (its `contacts:`, config/contacts.yaml), one line each."""
    return [_contacts().describe(name) for name in spec.contacts]


def _runbook(key: str) -> RunbookSpec:
    runbooks = _runbooks()
    if key not in runbooks:
        raise ApiError(404, f"no runbook {key!r}; known: {', '.join(sorted(runbooks))}", {"key": key})
    return runbooks[key]


@router.get("/runbooks", tags=["service"], summary="The runbooks' keys and titles (no key needed)")
def list_runbooks() -> dict[str, Any]:
    return {"data": [{"key": key, "title": spec.title} for key, spec in sorted(_runbooks().items())]}


@router.get("/runbooks/{key}", tags=["service"], summary="One runbook: symptoms and steps (no key needed)")
def runbook(key: Ident) -> dict[str, Any]:
    spec = _runbook(key)
    return {
        "key": key,
        "title": spec.title,
        "symptoms": spec.symptoms,
        "steps": list(spec.steps),
        "contacts": _whom(spec),
    }


@pages.get("/runbooks/{key}", include_in_schema=False)
def runbook_page(key: Ident) -> HTMLResponse:
    spec = _runbook(key)
    steps = "".join(f"<li>{html.escape(step)}</li>" for step in spec.steps)
    whom = "".join(f"<li>{html.escape(line)}</li>" for line in _whom(spec))
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(spec.title)}</title></head>"
        f"<body><h1>{html.escape(spec.title)}</h1><p><b>Symptoms:</b> {html.escape(spec.symptoms)}</p>"
        f"<ol>{steps}</ol>" + (f"<p><b>Contacts:</b></p><ul>{whom}</ul>" if whom else "") + "</body></html>"
    )
