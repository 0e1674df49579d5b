"""The alert rules page the way `nightwatch health` judges, and link to runbooks the API gateway serves."""

from __future__ import annotations

import html
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import ApiSettings
from config.runbooks import load_runbooks
from tests.test_observability import rules


def test_every_rule_severity_is_the_one_health_gives():
    """`nightwatch health` (ops/health/evaluate.py): a panel out of range is SEV-3, alert volume included; SEV-4 is
    the console's own faults, which no metric carries. The rules and the command must page the same way."""
    for name, rule in rules().items():
        severity = rule["labels"]["severity"]
        assert severity != "SEV-4", f"{name}: SEV-4 is cosmetic (the console's faults), not a metric"
        if rule["labels"].get("panel") == "alert_volume":
            assert severity == "SEV-3", name


def test_every_rule_runbook_url_is_a_page_the_api_serves():
    """An on-call engineer opens the link from a page: the API gateway serves it, with no key, as the runbook."""
    runbooks = load_runbooks().runbooks
    with TestClient(create_app(ApiSettings(store_url="sqlite://"))) as client:
        for name, rule in rules().items():
            url = urlsplit(rule["annotations"]["runbook_url"])
            assert url.netloc == "api.events.facility.org", f"{name}: the API gateway serves runbooks"
            page = client.get(url.path)
            assert page.status_code == 200, f"{name}: {url.path} answers {page.status_code}"
            spec = runbooks[url.path.rsplit("/", 1)[1]]
            assert spec.title in page.text and all(html.escape(step) in page.text for step in spec.steps), name
        assert client.get("/runbooks/no_such_runbook").status_code == 404
        assert client.get("/v1/runbooks/sev1").json()["steps"] == list(runbooks["sev1"].steps)
