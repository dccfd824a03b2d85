"""The in-cluster apps of blumeops and the building block they share to take a tailnet name over from the host."""

from components.apps.base import (
    AppIngress,
    AppIngressArgs,
    AppLoadBalancer,
    AppLoadBalancerArgs,
    IngressBackend,
    LegacyClaim,
    LegacyCutover,
)
from components.apps.dashboards import Dashboard, agent_dashboards, dashboards_from_directory, queried_metrics
from components.apps.devpi import Devpi, DevpiArgs, ImportSource
from components.apps.grafana import Datasource, Grafana, GrafanaArgs, GrafanaImages
from components.apps.miniflux import Miniflux, MinifluxArgs, MinifluxDatabase

__all__ = [
    "AppIngress",
    "AppIngressArgs",
    "AppLoadBalancer",
    "AppLoadBalancerArgs",
    "Dashboard",
    "Datasource",
    "Devpi",
    "DevpiArgs",
    "Grafana",
    "GrafanaArgs",
    "GrafanaImages",
    "ImportSource",
    "IngressBackend",
    "LegacyClaim",
    "LegacyCutover",
    "Miniflux",
    "MinifluxArgs",
    "MinifluxDatabase",
    "agent_dashboards",
    "dashboards_from_directory",
    "queried_metrics",
]
