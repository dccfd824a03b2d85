"""The gauges the host's metrics agents write to the node_exporter textfile directory: the one source of their
names. The agents' scripts get each name in their preamble (``METRIC_*``), and the dashboards the program
generates (``components/apps/dashboards.py``) query the same objects, so a renamed gauge cannot leave a
dashboard querying a metric nobody writes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Gauge:
    """A gauge an agent writes (``<name> <value>`` with its HELP/TYPE lines)."""

    name: str
    meaning: str  # what the value says, for dashboards and reviewers
    unit: str = "none"  # Grafana's unit id: "bool_yes_no" for 1/0 gauges, "none" for counts


ZOT_UP = Gauge("zot_up", "zot answers on its catalog", "bool_yes_no")
MINIKUBE_UP = Gauge("minikube_up", "the minikube profile is Running", "bool_yes_no")
MINIKUBE_APISERVER_UP = Gauge("minikube_apiserver_up", "the API server answers /healthz", "bool_yes_no")
MINIKUBE_NODES = Gauge("minikube_node_count", "nodes of the cluster")
MINIKUBE_PODS = Gauge("minikube_pod_count", "pods in all namespaces")
MINIKUBE_NAMESPACES = Gauge("minikube_namespace_count", "namespaces")

# What each agent writes, keyed by the preamble variable its script reads the name from.
ZOT_GAUGES: dict[str, Gauge] = {"METRIC_UP": ZOT_UP}
MINIKUBE_GAUGES: dict[str, Gauge] = {
    "METRIC_UP": MINIKUBE_UP,
    "METRIC_APISERVER_UP": MINIKUBE_APISERVER_UP,
    "METRIC_NODES": MINIKUBE_NODES,
    "METRIC_PODS": MINIKUBE_PODS,
    "METRIC_NAMESPACES": MINIKUBE_NAMESPACES,
}


def preamble(gauges: dict[str, Gauge]) -> dict[str, str]:
    """The preamble variables that name an agent's gauges."""
    return {variable: gauge.name for variable, gauge in gauges.items()}
