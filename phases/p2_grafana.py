"""Phase 2, Grafana: Grafana in the cluster at ``grafana``, and the brew Grafana on indri retired.

Takes indri (phase 0), the cluster's providers (phase 0) and the ProxyClass (phase 1). The cutover is ordered
by dependencies, inside one ``pulumi up``: the chart is deployed and ready first, then the brew service
``grafana`` is stopped and its serve entry for ``svc:grafana`` cleared (their state recorded on indri), then the
legacy Tailscale Service ``svc:grafana`` is deleted through the Tailscale API (its definition recorded), and only
then the Ingress ``grafana`` is created, so the operator's proxy claims ``grafana.<tailnet>`` and not
``grafana-1``. Lowering the target to 1 undoes it in reverse: the Ingress goes, the Service definition comes
back, the brew service starts and its serve entry is set again, then the chart goes; the namespace and the
volume stay with Grafana's data, and raising the target takes them back (docs/operating.md, "Moving forward
and rolling back").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi

from components.apps import Grafana, GrafanaArgs
from components.host import BrewService
from phases import Handover, Phase
from phases import settings as s
from phases.p0_foundation import INDRI, KEPT_STATE, KUBERNETES, legacy_name_claim
from phases.p1_kubernetes import PROXY_CLASS

PROJECT = Path(__file__).resolve().parent.parent


def _url(raw: Any) -> str:
    value = s.text(raw)
    if not value.startswith(("http://", "https://")) or " " in value:
        raise s.InvalidValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


def _project_directory(raw: Any) -> str:
    """A directory of the operator's checkout (where `pulumi up` runs): absolute, or relative to the project."""
    value = s.text(raw)
    if ".." in value.split("/"):
        raise s.InvalidValueError(f"{value!r} contains '..'; name the directory inside the project or absolutely")
    path = Path(value) if value.startswith("/") else PROJECT / value
    if not path.is_dir():
        raise s.InvalidValueError(f"{value!r} is not a directory (relative paths are read from {PROJECT})")
    return str(path)


@s.section("grafana")
class GrafanaSettings:
    """Grafana in the cluster, and the brew Grafana it replaces."""

    chart_version: str = s.setting(s.chart_version, "grafana-community grafana chart version", default="12.11.1")
    # The admin login is a secret too: the pack refuses well-known logins such as `admin` in plain sight.
    admin_user: pulumi.Output[str] = s.setting(s.text, "Grafana admin login (Secret grafana-admin)", secret=True,
                                               required=True, example="<login>")
    admin_password: pulumi.Output[str] = s.setting(s.text, "Grafana admin password (Secret grafana-admin)",
                                                   secret=True, required=True, example="<password>")
    hostname: str = s.setting(s.dns_label, "Grafana's tailnet hostname", default="grafana")
    storage_size: str = s.setting(s.storage_quantity, "Grafana's volume (kept by a rollback)", default="1Gi",
                                  example="1Gi")
    prometheus_url: str = s.setting(_url, "Prometheus as pods reach it (it stays on indri)",
                                    default="http://host.minikube.internal:9090")
    loki_url: str = s.setting(_url, "Loki as pods reach it (it stays on indri)",
                              default="http://host.minikube.internal:3100")
    dashboards_dir: str | None = s.setting(
        _project_directory, "directory of the homelab's own dashboards (*.json), loaded as ConfigMaps",
        example="dashboards")
    legacy_formula: str = s.setting(s.text, "the Homebrew formula of the Grafana that indri runs", default="grafana")
    legacy_service: str = s.setting(s.tailscale_service, "the Tailscale Service that holds the name before",
                                    default="svc:grafana")


SETTINGS = (GrafanaSettings,)


def build(phase: Phase, handover: Handover) -> None:
    host = handover.take(INDRI)
    tailnet = handover.settings.tailnet
    grafana = handover.section(GrafanaSettings)
    legacy = legacy_name_claim(handover, BrewService(grafana.legacy_formula, host.tools.brew), grafana.legacy_service)
    args = GrafanaArgs(
        provider=handover.take(KUBERNETES),
        kept=handover.take(KEPT_STATE),
        proxy_class=handover.take(PROXY_CLASS),
        tailnet=tailnet.name,
        admin_user=grafana.admin_user,
        admin_password=grafana.admin_password,
        chart_version=grafana.chart_version,
        hostname=grafana.hostname,
        prometheus_url=grafana.prometheus_url,
        loki_url=grafana.loki_url,
        storage_size=grafana.storage_size,
        dashboards_dir=grafana.dashboards_dir,
        legacy=legacy,
    )
    app = Grafana("grafana", args, pulumi.ResourceOptions(parent=phase))
    assert app.ingress.cutover is not None and app.ingress.cutover.retirement is not None
    handover.retired[grafana.legacy_formula] = app.ingress.cutover.retirement.retire
    handover.endpoints["grafana"] = args.root_url
