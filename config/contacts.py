"""Contacts (contacts.yaml): the guide's Contact Information, shown where a runbook says to contact someone.

Internal teams have a Slack channel and an escalation address; external services (the cloud provider, the data
sources) a contact and their support hours. Each runbook names the contacts it calls for (runbooks.yaml
`contacts:`); each source's own contact stays in sources.yaml.
"""

from __future__ import annotations

from pydantic import Field

from config.base import Strict

_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class Team(Strict):
    title: str
    channel: str = Field(pattern=r"^#[a-z0-9][a-z0-9._-]*$")  # the Slack channel, e.g. #ops-events
    escalation: str = Field(pattern=_EMAIL)

    def describe(self) -> str:
        return f"{self.title}: {self.channel}, escalation {self.escalation}"


class ExternalContact(Strict):
    title: str
    contact: str = Field(pattern=_EMAIL)
    hours: str  # support hours, e.g. 24/7 or Business hours

    def describe(self) -> str:
        return f"{self.title}: {self.contact} ({self.hours})"


class ContactsConfig(Strict):
    version: str
    teams: dict[str, Team]
    external: dict[str, ExternalContact]

    def names(self) -> set[str]:
        return set(self.teams) | set(self.external)

    def describe(self, name: str) -> str:
        entry = self.teams.get(name) or self.external.get(name)
        return entry.describe() if entry else f"{name}: no such contact (config/contacts.yaml)"
