"""Grafana in the cluster: the grafana-community chart, its admin Secret, a volume a rollback keeps, the
datasources on the host, the dashboards as ConfigMaps, and the Ingress that takes the name ``grafana`` over from
the host."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.apps.base import AppIngress, AppIngressArgs, IngressBackend, LegacyClaim
from components.apps.dashboards import Dashboard, agent_dashboards, dashboards_from_directory, queried_metrics
from components.cluster.cloudnative_pg import ComputeResources
from components.cluster.objects import (
    ImageRef,
    KeptState,
    PinnedChart,
    ProxyClassRef,
    helm_chart,
    kept_claim,
    kubernetes_opts,
    namespace,
    secret_from_config,
)
from components.host.metrics import MINIKUBE_GAUGES, ZOT_GAUGES

GRAFANA_TYPE = "blumeops:app:Grafana"
CHART = "grafana"
# The community chart: grafana/helm-charts' grafana chart is frozen.
CHART_REPOSITORY = "https://grafana-community.github.io/helm-charts"
RELEASE = "grafana"  # the chart's objects are named after the release: Service grafana, Deployment grafana
PINNED = PinnedChart(CHART, CHART_REPOSITORY, RELEASE)
SERVICE_PORT = 80
ADMIN_SECRET = "grafana-admin"
ADMIN_USER_KEY = "admin-user"
ADMIN_PASSWORD_KEY = "admin-password"
DASHBOARD_LABEL = "grafana_dashboard"
DATA_CLAIM = "grafana"
# chart 12.11.1's defaults, pinned here so a chart bump cannot move them silently
GRAFANA_IMAGE = ImageRef("docker.io/grafana/grafana", "13.2.0")
SIDECAR_IMAGE = ImageRef("quay.io/kiwigrid/k8s-sidecar", "2.10.1")
INIT_CHOWN_IMAGE = ImageRef("docker.io/library/busybox", "1.38.0")
GRAFANA_RESOURCES = ComputeResources(requests_memory="128Mi", requests_cpu="100m", limits_memory="512Mi",
                                     limits_cpu="500m")


@dataclass(frozen=True, slots=True)
class GrafanaImages:
    """Every image the chart runs with these values (the test pod and the image renderer are off)."""

    grafana: ImageRef = GRAFANA_IMAGE
    sidecar: ImageRef = SIDECAR_IMAGE  # the dashboards sidecar
    init_chown_data: ImageRef = INIT_CHOWN_IMAGE  # chowns the volume before Grafana starts

    @property
    def refs(self) -> tuple[str, ...]:
        return (self.grafana.ref, self.sidecar.ref, self.init_chown_data.ref)


def _chart_image(image: ImageRef) -> dict[str, str]:
    """The chart's image value: registry and repository apart (``docker.io`` + ``grafana/grafana``)."""
    registry, repository = image.repository.split("/", 1)
    return {"registry": registry, "repository": repository, "tag": image.tag}


@dataclass(frozen=True, slots=True)
class Datasource:
    name: str
    type: str  # "prometheus", "loki"
    uid: str
    url: str
    is_default: bool = False


@dataclass(frozen=True, slots=True)
class GrafanaArgs:
    provider: pulumi.ProviderResource
    kept: KeptState  # the namespace and the volume outlive a rollback, and are taken back
    proxy_class: ProxyClassRef
    tailnet: str  # "<tailnet>.ts.net": the root URL is https://<hostname>.<tailnet>
    # The admin's login and password, from config secrets (the policy pack refuses the well-known "admin").
    admin_user: pulumi.Output[str]
    admin_password: pulumi.Output[str]
    chart_version: str = "12.11.1"
    namespace: str = "monitoring"
    hostname: str = "grafana"
    # Prometheus and Loki stay on the host; pods reach it as host.minikube.internal (the docker driver's name).
    prometheus_url: str = "http://host.minikube.internal:9090"
    loki_url: str = "http://host.minikube.internal:3100"
    storage_size: str = "1Gi"
    storage_class: str | None = None  # None: the cluster's default StorageClass
    resources: ComputeResources = GRAFANA_RESOURCES
    images: GrafanaImages = field(default_factory=GrafanaImages)
    # Dashboards besides the generated ones (agent_dashboards()): *.json files of this directory.
    dashboards_dir: str | None = None
    legacy: LegacyClaim | None = None  # what holds the name before (the brew Grafana, svc:grafana)

    def __post_init__(self) -> None:
        problems = []
        for key, url in (("prometheus_url", self.prometheus_url), ("loki_url", self.loki_url)):
            if not url.startswith(("http://", "https://")):
                problems.append(f"{key} {url!r} is not an http(s) URL")
        if "." not in self.tailnet or self.tailnet.startswith("."):
            problems.append(f"tailnet {self.tailnet!r} is not a tailnet DNS name such as example.ts.net")
        if problems:
            raise ValueError("Grafana: " + "; ".join(problems))

    @property
    def root_url(self) -> str:
        return f"https://{self.hostname}.{self.tailnet}"

    def datasources(self) -> tuple[Datasource, ...]:
        return (
            Datasource("Prometheus", "prometheus", "prometheus", self.prometheus_url, is_default=True),
            Datasource("Loki", "loki", "loki", self.loki_url),
        )

    def dashboards(self) -> tuple[Dashboard, ...]:
        """The generated dashboards, then those of ``dashboards_dir``; a slug used twice is refused."""
        found = list(agent_dashboards())
        if self.dashboards_dir is not None:
            found.extend(dashboards_from_directory(self.dashboards_dir))
        seen: dict[str, str] = {}
        for dashboard in found:
            if dashboard.slug in seen:
                raise ValueError(f"Grafana: two dashboards are named {dashboard.slug} ({seen[dashboard.slug]} and "
                                 f"{dashboard.source}): rename one file")
            seen[dashboard.slug] = dashboard.source
        return tuple(found)

    def values(self) -> dict[str, Any]:
        """The chart's values (no secret among them: the admin credentials are in the Secret they name)."""
        resources = self.resources
        images = self.images
        return {
            "image": _chart_image(images.grafana),
            "testFramework": {"enabled": False},
            "admin": {"existingSecret": ADMIN_SECRET, "userKey": ADMIN_USER_KEY, "passwordKey": ADMIN_PASSWORD_KEY},
            # The volume is the component's own claim, which a rollback keeps (objects.kept_claim).
            "persistence": {"enabled": True, "type": "pvc", "existingClaim": DATA_CLAIM},
            "initChownData": {"image": _chart_image(images.init_chown_data)},
            "grafana.ini": {
                "server": {"root_url": self.root_url},
                "analytics": {"check_for_updates": False, "reporting_enabled": False},
            },
            "datasources": {
                "datasources.yaml": {
                    "apiVersion": 1,
                    "datasources": [
                        {"name": source.name, "type": source.type, "uid": source.uid, "url": source.url,
                         "access": "proxy", "isDefault": source.is_default, "editable": False}
                        for source in self.datasources()
                    ],
                },
            },
            "sidecar": {
                "image": _chart_image(images.sidecar),
                "dashboards": {"enabled": True, "label": DASHBOARD_LABEL, "labelValue": "1"},
            },
            "resources": {
                "requests": {"memory": resources.requests_memory, "cpu": resources.requests_cpu},
                "limits": {"memory": resources.limits_memory, "cpu": resources.limits_cpu},
            },
        }


def check_generated_dashboards(dashboards: Sequence[Dashboard]) -> None:
    """Every query of a generated dashboard reads a gauge a host agent writes (they share the names)."""
    written = {gauge.name for gauge in (*ZOT_GAUGES.values(), *MINIKUBE_GAUGES.values())}
    for dashboard in dashboards:
        if dashboard.source != "generated":
            continue
        for expr in dashboard.queries():
            unknown = queried_metrics(expr) - written
            if unknown:
                raise ValueError(f"generated dashboard {dashboard.slug} queries {sorted(unknown)}, which no agent "
                                 "writes (components/host/metrics.py names what they write)")


class Grafana(pulumi.ComponentResource):
    """Puts on the cluster: namespace ``monitoring``; the Secret ``grafana-admin`` (``admin-user``,
    ``admin-password`` from config secrets); the PersistentVolumeClaim ``grafana`` (kept by a rollback); the
    ``grafana`` chart (pinned version and images, root URL, analytics off, Prometheus and Loki on the host as
    datasources, the dashboards sidecar); one ConfigMap per dashboard (label ``grafana_dashboard: "1"``); and
    the Tailscale Ingress ``grafana``. The cutover has no data to carry (dashboards are code): the chart is
    deployed and ready, then the brew Grafana stops and ``svc:grafana`` is released, then the Ingress claims the
    name (see ``AppIngress``).

    Undo: destroying it removes the Ingress, rolls the cutover back (``svc:grafana`` recreated, the brew
    service and its serve entry restored), then the chart, ConfigMaps and Secret. The namespace ``monitoring``
    and the claim stay in the cluster with Grafana's data (``retain_on_delete``); raising the target again
    takes them back (the kept-state provider upserts). Removing them for good is a manual ``kubectl delete``.
    """

    def __init__(self, name: str, args: GrafanaArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        dashboards = args.dashboards()
        check_generated_dashboards(dashboards)
        values = args.values()
        super().__init__(
            GRAFANA_TYPE,
            name,
            {
                "namespace": args.namespace,
                "chartVersion": args.chart_version,
                "hostname": args.hostname,
                "rootUrl": args.root_url,
                "datasources": {source.name: source.url for source in args.datasources()},
                "dashboards": [dashboard.slug for dashboard in dashboards],
                "images": list(args.images.refs),
                "artifacts": {f"cluster/grafana/dashboards/{d.file_name}": d.text for d in dashboards},
            },
            opts,
        )
        provider = args.provider
        self.namespace = namespace(f"{name}-namespace", args.namespace, provider, self, kept=args.kept)
        ns = self.namespace.metadata.name
        self.admin = secret_from_config(
            f"{name}-admin",
            name=ADMIN_SECRET,
            namespace=ns,
            string_data={ADMIN_USER_KEY: args.admin_user, ADMIN_PASSWORD_KEY: args.admin_password},
            provider=provider,
            parent=self,
        )
        self.data = kept_claim(
            f"{name}-data",
            name=DATA_CLAIM,
            namespace=ns,
            size=args.storage_size,
            storage_class=args.storage_class,
            labels={"app.kubernetes.io/name": "grafana"},
            kept=args.kept,
            parent=self,
            depends_on=[self.namespace],
        )
        self.dashboards: dict[str, k8s.core.v1.ConfigMap] = {
            dashboard.slug: k8s.core.v1.ConfigMap(
                f"{name}-dashboard-{dashboard.slug}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"grafana-dashboard-{dashboard.slug}", namespace=ns, labels={DASHBOARD_LABEL: "1"},
                ),
                data={dashboard.file_name: dashboard.text},
                opts=kubernetes_opts(provider, self),
            )
            for dashboard in dashboards
        }
        self.chart = helm_chart(
            f"{name}-chart",
            PINNED,
            args.chart_version,
            ns,
            values,
            opts=kubernetes_opts(provider, self, [self.admin, self.data]),
        )
        self.ingress = AppIngress(
            name,
            AppIngressArgs(
                provider=provider,
                namespace=ns,
                hostname=args.hostname,
                backend=IngressBackend(RELEASE, SERVICE_PORT),
                proxy_class=args.proxy_class,
                legacy=args.legacy,
                ready=(self.chart,),
                health_path="/api/health",
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"namespace": ns, "hostname": args.hostname, "rootUrl": args.root_url})
