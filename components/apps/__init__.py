"""The in-cluster apps of blumeops and the building block they share to take a tailnet name over from the host."""

from components.apps.base import (
    AppIngress,
    AppIngressArgs,
    IngressBackend,
    LegacyClaim,
    LegacyCutover,
)
from components.apps.dashboards import Dashboard, agent_dashboards, dashboards_from_directory, queried_metrics
from components.apps.grafana import Datasource, Grafana, GrafanaArgs, GrafanaImages

__all__ = [
    "AppIngress",
    "AppIngressArgs",
    "Dashboard",
    "Datasource",
    "Grafana",
    "GrafanaArgs",
    "GrafanaImages",
    "IngressBackend",
    "LegacyClaim",
    "LegacyCutover",
    "agent_dashboards",
    "dashboards_from_directory",
    "queried_metrics",
]
