"""The API and console manifests (deploy/kubernetes/) against config/endpoints.yaml: every hostname of the guide's
Key Endpoints with TLS, each routed to the Service and port the configuration names, the probes on the real health
endpoints, and the secrets by reference."""

from __future__ import annotations

from pathlib import Path

import yaml

from config.settings import load_config

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes"
GUIDE_HOSTS = {
    "api.events.facility.org",
    "dashboard.events.facility.org",
    "alerts.events.facility.org",
    "admin.events.facility.org",
}


def documents(*names: str) -> dict[tuple[str, str], dict]:
    found = {}
    for name in names:
        for doc in yaml.safe_load_all((DEPLOY / name).read_text()):
            if doc:
                found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def test_the_ingress_serves_the_guides_four_hostnames_with_tls_as_configured():
    config = load_config().endpoints
    docs = documents("ingress.yaml", "api.yaml", "console.yaml")
    ingress = docs[("Ingress", "nightwatch")]
    assert {e.hostname for e in config.endpoints.values()} == GUIDE_HOSTS
    tls_hosts = {host for block in ingress["spec"]["tls"] for host in block["hosts"]}
    assert tls_hosts == GUIDE_HOSTS and {b["secretName"] for b in ingress["spec"]["tls"]} == {config.tls_secret}
    assert ingress["spec"]["ingressClassName"] == config.ingress_class
    rules = {rule["host"]: rule["http"]["paths"] for rule in ingress["spec"]["rules"]}
    assert set(rules) == GUIDE_HOSTS
    for endpoint in config.endpoints.values():
        (path,) = rules[endpoint.hostname]
        backend = path["backend"]["service"]
        assert (backend["name"], backend["port"]["number"]) == (endpoint.service, endpoint.port), endpoint.hostname
        service = docs[("Service", endpoint.service)]
        assert [p["port"] for p in service["spec"]["ports"]] == [endpoint.port]
        assert all(doc["metadata"]["namespace"] == config.namespace for doc in docs.values())


def test_every_deployment_probes_its_real_health_endpoint_on_its_port():
    config = load_config().endpoints
    docs = documents("api.yaml", "console.yaml")
    for endpoint in config.endpoints.values():
        deployment = docs[("Deployment", endpoint.service)]
        service = docs[("Service", endpoint.service)]
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert [p["containerPort"] for p in container["ports"]] == [endpoint.port]
        assert str(endpoint.port) in container["command"]
        for probe in ("readinessProbe", "livenessProbe"):
            get = container[probe]["httpGet"]
            assert (get["path"], get["port"]) == (endpoint.health_path, endpoint.port), (endpoint.service, probe)
        assert [p["targetPort"] for p in service["spec"]["ports"]] == [endpoint.port]
    assert config.endpoints["api"].health_path == "/v1/health"
    assert config.endpoints["dashboard"].health_path == "/_stcore/health"


def test_secrets_are_referenced_never_written():
    for name in ("api.yaml", "console.yaml", "ingress.yaml"):
        text = (DEPLOY / name).read_text()
        assert "postgresql://" not in text and "password:" not in text.lower()
        for doc in yaml.safe_load_all(text):
            assert doc["kind"] != "Secret"
    docs = documents("api.yaml", "console.yaml")
    for service in ("nightwatch-api", "nightwatch-console"):
        (container,) = docs[("Deployment", service)]["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item for item in container["env"]}
        assert env["NIGHTWATCH_DB_URL"]["valueFrom"]["secretKeyRef"] == {"name": "nightwatch", "key": "db-url"}


def test_the_console_opens_on_the_page_of_its_hostname():
    config = load_config().endpoints
    assert config.landing_for_host("alerts.events.facility.org") == "Alerts"
    assert config.landing_for_host("ADMIN.events.facility.org:443") == "Configuration"
    assert config.landing_for_host("dashboard.events.facility.org") == "Monitoring"
    assert config.landing_for_host("127.0.0.1:8501") == ""
    assert config.landing_for_key("alerts") == "Alerts"
