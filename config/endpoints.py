"""The guide's Key Endpoints (endpoints.yaml): each service's public hostname, its port in the cluster, its health
path, and for the console's three faces the page it opens on.

The Kubernetes manifests in deploy/kubernetes/ (api.yaml, console.yaml, ingress.yaml) carry these values and
tests/test_deploy.py checks them against this file; the console reads `landing` to choose its first page.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from config.base import Strict


class Endpoint(Strict):
    purpose: str
    hostname: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
    service: str  # the Kubernetes Service (and Deployment) that serves it
    port: int = Field(gt=0, lt=65536)
    health_path: str = Field(pattern=r"^/")
    landing: str = ""  # console only: the page the console opens on at this hostname ("" = its first page)


class EndpointsConfig(Strict):
    version: str
    namespace: str = "nightwatch"
    tls_secret: str  # the certificate of every hostname (cert-manager or a supplied one)
    ingress_class: str = "nginx"
    endpoints: dict[Literal["api", "dashboard", "alerts", "admin"], Endpoint]

    @model_validator(mode="after")
    def _consistent(self) -> EndpointsConfig:
        missing = {"api", "dashboard", "alerts", "admin"} - set(self.endpoints)
        if missing:
            raise ValueError(f"the guide's endpoints {sorted(missing)} are missing")
        ports: dict[str, int] = {}
        for name, endpoint in self.endpoints.items():
            if ports.setdefault(endpoint.service, endpoint.port) != endpoint.port:
                raise ValueError(f"service {endpoint.service} is given two ports ({name})")
        return self

    def landing_for_host(self, host: str) -> str:
        """The console page to open for a request to `host` (a Host header, port allowed), or ""."""
        name = host.split(":", 1)[0].strip().lower()
        for endpoint in self.endpoints.values():
            if endpoint.hostname == name:
                return endpoint.landing
        return ""

    def landing_for_key(self, key: str) -> str:
        """The console page named by an endpoint key (`?page=alerts`), or ""."""
        endpoint = self.endpoints.get(key.strip().lower())  # type: ignore[call-overload]
        return endpoint.landing if endpoint is not None else ""
