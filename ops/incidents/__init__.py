"""Incidents: the guide's Incident Response made a record that people work through.

The health watcher (`nightwatch watch`, `watcher.watch_once`) evaluates health on a clock. When the severity
reaches a level of `config/incidents.yaml` `open_at` (SEV-1 and SEV-2; SEV-3/4 on request) it opens an incident
(one at a time: a worse level raises it), pages the on-call through the configured channels and climbs
`config/oncall.yaml`'s escalation ladder (15 min backup on-call, 30 min engineering lead, 1 hour director) until
someone acknowledges; when health has been below every opening level for `resolve_after_min`, it resolves it.

People act through `actions` (the one code path for the console, the CLI and the API): acknowledge, note, tick a
step of the procedure's checklist (the guide's 7 steps for SEV-1, 6 for SEV-2), resolve, and write the
post-incident review. Each checks the actor's role (Operator and above: `respond_incidents`) and is audited in
the transaction that makes the change; each is a line of the incident's timeline.

Modules: `records` (reading incidents, their timeline and checklist), `pages` (the notices and the ladder),
`actions` (what people do), `watcher` (what the watcher does).
"""

from ops.incidents.actions import acknowledge, add_note, resolve, review, tick
from ops.incidents.records import Incident, active_incident, get_incident, list_incidents
from ops.incidents.watcher import WATCHER, watch_once

__all__ = [
    "WATCHER",
    "Incident",
    "acknowledge",
    "active_incident",
    "add_note",
    "get_incident",
    "list_incidents",
    "resolve",
    "review",
    "tick",
    "watch_once",
]
