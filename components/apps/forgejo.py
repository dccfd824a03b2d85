"""Forgejo in the cluster: the forgejo-helm chart on a claim a rollback keeps, carrying the brew forge's identity
(its SECRET_KEY, INTERNAL_TOKEN and JWT_SECRET from config; its SSH host keys with its data), at two tailnet
names: the web at ``forge`` (Ingress) and SSH at ``git`` (LoadBalancer: the operator cannot serve HTTPS and raw
TCP on one name)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components.apps.base import (
    AppIngress,
    AppIngressArgs,
    AppLoadBalancer,
    AppLoadBalancerArgs,
    IngressBackend,
    LegacyClaim,
)
from components.cluster.cloudnative_pg import ComputeResources
from components.cluster.objects import (
    ImageRef,
    KeptState,
    PinnedChart,
    ProxyClassRef,
    helm_chart,
    kept_claim,
    namespace,
    secret_from_config,
)

FORGEJO_TYPE = "blumeops:app:Forgejo"
CHART = "forgejo"
CHART_REPOSITORY = "oci://code.forgejo.org/forgejo-helm"
RELEASE = "forgejo"  # the chart's objects: Deployment forgejo, Services forgejo-http and forgejo-ssh
PINNED = PinnedChart(CHART, CHART_REPOSITORY, RELEASE)
# chart 15.0.3's appVersion, rootless (uid 1000, the built-in SSH server on 2222): pinned here so a chart bump
# cannot move it silently
FORGEJO_IMAGE = ImageRef("code.forgejo.org/forgejo/forgejo", "13.0.3-rootless")
HTTP_PORT = 3000
SSH_LISTEN_PORT = 2222
DATA_CLAIM = "forgejo-data"
IDENTITY_SECRET = "forgejo-identity"
# app.ini keys the identity Secret feeds, as the chart's env-to-ini reads them (FORGEJO__<section>__<KEY>)
IDENTITY_KEYS = {"SECRET_KEY": "security", "INTERNAL_TOKEN": "security", "JWT_SECRET": "oauth2"}
FORGEJO_RESOURCES = ComputeResources(requests_memory="256Mi", requests_cpu="100m", limits_memory="1Gi",
                                     limits_cpu="1")


@dataclass(frozen=True, slots=True)
class ForgejoIdentity:
    """What the brew forge's app.ini holds and the database depends on: SECRET_KEY encrypts two-factor secrets
    and OAuth2 application secrets; INTERNAL_TOKEN and JWT_SECRET sign what the forge hands out. Never fresh ones."""

    secret_key: pulumi.Output[str]
    internal_token: pulumi.Output[str]
    jwt_secret: pulumi.Output[str]

    def values(self) -> dict[str, pulumi.Output[str]]:
        return {"SECRET_KEY": self.secret_key, "INTERNAL_TOKEN": self.internal_token, "JWT_SECRET": self.jwt_secret}


# The with-data middle: given the step that stopped the brew forge, registers the move and returns what the
# chart waits for; given the chart, registers the checks that must pass before the names move.
DataMove = Callable[[Sequence[pulumi.Resource]], Sequence[pulumi.Resource]]
Verify = Callable[[Sequence[pulumi.Resource]], Sequence[pulumi.Resource]]


@dataclass(frozen=True, slots=True)
class ForgejoArgs:
    provider: pulumi.ProviderResource
    kept: KeptState
    proxy_class: ProxyClassRef
    tailnet: str
    chart_version: str
    identity: ForgejoIdentity
    legacy: LegacyClaim  # the brew forgejo and svc:forge (HTTPS 443 and TCP 22)
    data_move: DataMove
    verify: Verify
    hostname: str = "forge"
    ssh_hostname: str = "git"
    ssh_user: str = "forgejo"  # the user in every clone URL of the brew forge (forgejo@...)
    storage_size: str = "10Gi"
    image: ImageRef = FORGEJO_IMAGE
    namespace: str = "forgejo"
    tags: tuple[str, ...] = ("tag:forge",)

    def __post_init__(self) -> None:
        if self.hostname == self.ssh_hostname:
            raise ValueError("Forgejo: the web and SSH names must differ (the operator serves HTTPS or TCP on a "
                             "name, not both)")
        if not self.image.tag.endswith("-rootless"):
            raise ValueError(f"Forgejo: {self.image.ref} is not a rootless image; the values assume uid 1000 and the "
                             "built-in SSH server")

    @property
    def root_url(self) -> str:
        return f"https://{self.hostname}.{self.tailnet}/"


def chart_values(args: ForgejoArgs) -> dict[str, Any]:
    """The chart's values: the claim the program keeps, the brew forge's layout (APP_DATA_PATH /data, so the
    copied data/ lands where it was: forgejo.db, forgejo-repositories/, ssh/ with the built-in server's host
    keys), the identity from the Secret, no admin the chart would create in the carried database, no test pod."""
    registry, repository = args.image.repository.split("/", 1)
    return {
        "replicaCount": 1,
        "strategy": {"type": "Recreate"},  # one writer of the SQLite database
        "image": {"registry": registry, "repository": repository, "tag": args.image.tag,
                  "rootless": True},
        "persistence": {"enabled": True, "create": False, "claimName": DATA_CLAIM},
        "serviceAccount": {"create": False, "automountServiceAccountToken": False},
        "containerSecurityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                     "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000},
        "resources": {"requests": {"memory": FORGEJO_RESOURCES.requests_memory,
                                   "cpu": FORGEJO_RESOURCES.requests_cpu},
                      "limits": {"memory": FORGEJO_RESOURCES.limits_memory, "cpu": FORGEJO_RESOURCES.limits_cpu}},
        "test": {"enabled": False},
        "gitea": {
            "admin": {"username": ""},  # the carried database has its admins
            "additionalConfigFromEnvs": [
                {"name": f"FORGEJO__{section.upper()}__{key}",
                 "valueFrom": {"secretKeyRef": {"name": IDENTITY_SECRET, "key": key}}}
                for key, section in IDENTITY_KEYS.items()],
            "config": {
                "server": {
                    "DOMAIN": f"{args.hostname}.{args.tailnet}", "ROOT_URL": args.root_url,
                    "SSH_DOMAIN": f"{args.ssh_hostname}.{args.tailnet}", "SSH_PORT": 22,
                    "SSH_LISTEN_PORT": SSH_LISTEN_PORT, "APP_DATA_PATH": "/data",
                    "SSH_USER": args.ssh_user, "BUILTIN_SSH_SERVER_USER": args.ssh_user,
                },
                "database": {"DB_TYPE": "sqlite3", "PATH": "/data/forgejo.db"},
                "repository": {"ROOT": "/data/forgejo-repositories"},
            },
        },
    }


class Forgejo(pulumi.ComponentResource):
    """Puts on the cluster: namespace ``forgejo`` and the claim ``forgejo-data`` (10Gi), both kept by a rollback;
    the Secret ``forgejo-identity`` (the brew forge's SECRET_KEY, INTERNAL_TOKEN, JWT_SECRET, from config); then,
    in the "with data" order, after the brew forge stopped and its data moved into the claim (``data_move``), the
    forgejo chart (Deployment ``forgejo``, Services ``forgejo-http`` and ``forgejo-ssh``), the checks
    (``verify``: a clone trusting only the old host keys), ``svc:forge`` released, the Ingress ``forge`` and the
    LoadBalancer ``git`` (port 22 to the built-in SSH server), both tagged ``tag:forge``.

    Undo: destroying it removes the LoadBalancer and the Ingress, recreates ``svc:forge``, removes the chart and
    undoes the move (the snapshot goes), restarts the brew forge on its untouched directory; the Secret goes; the
    namespace and the claim stay with the cluster forge's data.
    """

    def __init__(self, name: str, args: ForgejoArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(FORGEJO_TYPE, name, {
            "namespace": args.namespace, "hostname": args.hostname, "sshHostname": args.ssh_hostname,
            "rootUrl": args.root_url, "images": [args.image.ref], "claim": DATA_CLAIM,
            "order": "with data"}, opts)
        provider = args.provider
        self.root_url = args.root_url
        self.namespace = namespace(f"{name}-namespace", args.namespace, provider, self, kept=args.kept)
        ns = self.namespace.metadata.name
        self.data = kept_claim(f"{name}-data", name=DATA_CLAIM, namespace=ns, size=args.storage_size,
                               storage_class="standard", labels={"app": "forgejo"}, kept=args.kept, parent=self,
                               depends_on=[self.namespace])
        self.identity = secret_from_config(f"{name}-identity", name=IDENTITY_SECRET, namespace=ns,
                                           string_data=args.identity.values(), provider=provider, parent=self)
        staged: list[pulumi.Resource] = [self.namespace, self.data, self.identity]
        self.chart: pulumi.Resource | None = None
        self.verified: list[pulumi.Resource] = []

        def carry(stopped: Sequence[pulumi.Resource]) -> Sequence[pulumi.Resource]:
            moved = list(args.data_move(stopped))
            self.chart = helm_chart(f"{name}-chart", PINNED, args.chart_version, ns, chart_values(args),
                                    pulumi.ResourceOptions(provider=provider, parent=self,
                                                           depends_on=[*staged, *moved]))
            self.verified = list(args.verify([self.chart]))
            return self.verified

        self.ingress = AppIngress(name, AppIngressArgs(
            provider=provider, namespace=ns, hostname=args.hostname, backend=IngressBackend("forgejo-http", HTTP_PORT),
            proxy_class=args.proxy_class, legacy=args.legacy, ready=staged, carry=carry, health_path="/api/healthz",
            tags=args.tags), pulumi.ResourceOptions(parent=self))
        assert self.ingress.cutover is not None
        self.ssh = AppLoadBalancer(f"{name}-ssh", AppLoadBalancerArgs(
            provider=provider, namespace=ns, hostname=args.ssh_hostname, service_name="git-tailscale",
            selector={"app.kubernetes.io/name": "forgejo", "app.kubernetes.io/instance": RELEASE}, port=22,
            target_port=SSH_LISTEN_PORT, proxy_class=args.proxy_class, ready=tuple(self.ingress.cutover.done),
            tags=args.tags), pulumi.ResourceOptions(parent=self))
        self.register_outputs({"namespace": ns, "rootUrl": args.root_url})
