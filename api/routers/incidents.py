"""Incidents: the listing (newest first, each with its latest update), one incident with its checklist, pages,
timeline and review; acknowledging, noting, ticking a step and resolving one (Operator keys), through the same
functions as the console and the CLI (ops.incidents): the key owner's role is checked again and the change is
audited as them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from access import roles
from access.apikeys import ApiKey
from api.auth import requires
from api.errors import ApiError, ErrorBody, not_found
from api.models import NON_BLANK, Acknowledge
from api.params import store_of
from ops import incidents
from ops.incidents.actions import PERMISSION

router = APIRouter()
# Ids and steps fit the store's integers: a larger number is a 422, not a database overflow.
IncidentId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The incident's number (INC-N)")]
Step = Annotated[int, Path(ge=1, le=1000, description="The step's number in the procedure, from 1")]
Reader = Depends(requires("view_dashboard"))
Responder = Depends(requires(PERMISSION))


class TimelineLine(BaseModel):
    at: Any
    kind: str = Field(description="opened | worsened | paged | escalated | acknowledged | note | tick | resolved | ...")
    actor: str
    text: str


class ChecklistStep(BaseModel):
    step: int
    text: str
    done_at: Any = None
    done_by: str | None = None


class Page(BaseModel):
    step: int
    after_min: int
    role: str
    person: str | None = None
    channel: str | None = None
    status: str = Field(description="paged | skipped (nobody covers the role now) | failed")
    at: Any


class IncidentSummary(BaseModel):
    incident_id: int
    name: str
    severity: str
    opened_severity: str
    status: str = Field(description="open | acknowledged | resolved")
    title: str
    reason: str
    procedure: str | None = None
    opened_at: Any
    acknowledged_at: Any = None
    acknowledged_by: str | None = None
    resolved_at: Any = None
    resolved_by: str | None = None
    latest: TimelineLine | None = None


class IncidentDetail(IncidentSummary):
    checklist: list[ChecklistStep]
    pages: list[Page]
    timeline: list[TimelineLine]
    review: dict[str, str] | None = None
    reviewed_by: str | None = None
    reviewed_at: Any = None


class IncidentPage(BaseModel):
    data: list[IncidentSummary]


class Note(BaseModel):
    text: str = Field(min_length=1, max_length=1000, pattern=NON_BLANK, description="What was found or done")
    public: bool = Field(False, description="also publish it to the status page as the incident's latest update")


class Tick(BaseModel):
    done: bool = Field(True, description="false unticks the step")
    note: str = Field("done", max_length=2000, pattern=NON_BLANK)


def _summary(incident: incidents.Incident) -> dict[str, Any]:
    data = incident.as_dict()
    data["latest"] = incident.latest
    return data


def _one(request: Request, incident_id: int) -> incidents.Incident:
    incident = incidents.get_incident(store_of(request), incident_id)
    if incident is None:
        raise not_found("incident", str(incident_id))
    return incident


@router.get("/incidents", response_model=IncidentPage, tags=["incidents"], summary="Incidents, newest first")
def list_incidents(
    request: Request,
    status: Annotated[
        Literal["active", "open", "acknowledged", "resolved"] | None,
        Query(description="active: not resolved yet"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    _key: ApiKey = Reader,
) -> dict[str, Any]:
    return {"data": [_summary(incident) for incident in incidents.list_incidents(store_of(request), status, limit)]}


@router.get(
    "/incidents/{incident_id}",
    response_model=IncidentDetail,
    tags=["incidents"],
    summary="One incident: checklist, pages, timeline, review",
)
def get_incident(request: Request, incident_id: IncidentId, _key: ApiKey = Reader) -> dict[str, Any]:
    return _summary(_one(request, incident_id))


def _act(request: Request, incident_id: int, act: Callable[[], Any]) -> dict[str, Any]:
    _one(request, incident_id)
    try:
        act()
    except roles.PermissionDenied as exc:
        raise ApiError(403, str(exc), {"incident_id": incident_id}) from exc
    except roles.AccessError as exc:
        raise ApiError(409, str(exc), {"incident_id": incident_id}) from exc
    return _summary(_one(request, incident_id))


ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not JSON"},
    409: {"model": ErrorBody, "description": "Not possible in the incident's state (already acknowledged, ...)"},
}


@router.post(
    "/incidents/{incident_id}/acknowledge",
    response_model=IncidentDetail,
    responses=ACTION_RESPONSES,
    tags=["incidents"],
    summary="Acknowledge an open incident (Operator keys): the escalation ladder stops",
)
def acknowledge(
    request: Request, incident_id: IncidentId, body: Acknowledge, key: ApiKey = Responder
) -> dict[str, Any]:
    store = store_of(request)
    return _act(request, incident_id, lambda: incidents.acknowledge(store, key.user_name, incident_id, body.note))


@router.post(
    "/incidents/{incident_id}/notes",
    response_model=IncidentDetail,
    responses=ACTION_RESPONSES,
    tags=["incidents"],
    summary="Add a note to an incident's timeline (Operator keys)",
)
def add_note(request: Request, incident_id: IncidentId, body: Note, key: ApiKey = Responder) -> dict[str, Any]:
    store = store_of(request)
    return _act(
        request, incident_id, lambda: incidents.add_note(store, key.user_name, incident_id, body.text, body.public)
    )


@router.post(
    "/incidents/{incident_id}/checklist/{step}",
    response_model=IncidentDetail,
    responses=ACTION_RESPONSES,
    tags=["incidents"],
    summary="Tick (or untick) a step of the incident's procedure (Operator keys)",
)
def tick(request: Request, incident_id: IncidentId, step: Step, body: Tick, key: ApiKey = Responder) -> dict[str, Any]:
    store = store_of(request)
    return _act(
        request,
        incident_id,
        lambda: incidents.tick(store, key.user_name, incident_id, step, body.note, done=body.done),
    )


@router.post(
    "/incidents/{incident_id}/resolve",
    response_model=IncidentDetail,
    responses=ACTION_RESPONSES,
    tags=["incidents"],
    summary="Resolve an incident by hand (Operator keys); the watcher resolves one when health recovers",
)
def resolve(request: Request, incident_id: IncidentId, body: Acknowledge, key: ApiKey = Responder) -> dict[str, Any]:
    store = store_of(request)
    return _act(request, incident_id, lambda: incidents.resolve(store, key.user_name, incident_id, body.note))
