"""The cluster objects every blumeops component and app builds the same way, each defined once here.

- ``kubernetes_opts``: the options of every Kubernetes child (explicit provider, parent; never the
  ambient default provider).
- ``namespace``: a Namespace.
- ``secret_from_config``: a Secret whose values come from stack config secrets (always sent as secrets).
- ``tailscale_ingress``: an Ingress served by the Tailscale operator at ``https://<host>.<tailnet>``.
- ``tailscale_load_balancer``: a LoadBalancer Service (``loadBalancerClass: tailscale``) at ``<host>``.
- ``ProxyClassRef``: the ProxyClass every exposure names, carried with its resource so each Ingress or
  LoadBalancer depends on it (the operator ignores a proxy whose ProxyClass does not exist yet).
- ``KeptState``, ``kept_opts``, ``kept_claim``: state a rollback keeps (see below).

State a rollback keeps. Lowering the target must run to the end and keep the data (Pulumi refuses to delete
a ``protect``ed resource even in a preview, so a phase's own state cannot be protected). What a phase adds
that holds data (a PersistentVolumeClaim, the Namespace it lives in) is registered with ``retain_on_delete``:
a rollback drops it from the stack's state and leaves the object, and its data, in the cluster. Raising the
target again registers the same object anew; pulumi-kubernetes 4.29+ creates with a client-side create,
which fails with AlreadyExists on the kept object, so kept objects go through a second provider for the same
cluster made with ``upsertExistingObjects``: its create applies to the existing object and takes it back.
That setting's documented hazard (a renamed resource is created, i.e. upserted, then the old name deleted,
which removes the object) cannot bite here: the delete of a kept object never reaches the cluster. Every
other object stays on the plain provider, where an unexpected existing object is still an error. Each kept
object carries the annotation ``blumeops/on-rollback: keep``, so a reader of the cluster, the policy pack
(which the engine does not tell about ``retain_on_delete``) and ``ops diff`` can see the model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

PROXY_CLASS_KEY = "tailscale.com/proxy-class"
KEPT_ANNOTATION = "blumeops/on-rollback"  # value "keep": the object outlives a rollback (retain_on_delete)
KEPT = "keep"
HOSTNAME_ANNOTATION = "tailscale.com/hostname"
# The tags the operator gives a proxy's device (default: the chart's proxyConfig.defaultTags, tag:k8s). Each
# must be owned by tag:k8s-operator in the tailnet policy, or the operator cannot tag the device.
TAGS_ANNOTATION = "tailscale.com/tags"
TAILSCALE = "tailscale"  # the operator's IngressClass and loadBalancerClass


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A container image pinned by tag (never ``latest``/``stable``)."""

    repository: str  # fully qualified: docker.io/tailscale/tailscale
    tag: str

    def __post_init__(self) -> None:
        if self.tag in ("", "latest", "stable", "unstable") or "/" not in self.repository:
            raise ValueError(f"{self.repository}:{self.tag} is not a pinned, fully qualified image")

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True, slots=True)
class ProxyClassRef:
    """A Tailscale ProxyClass by name, with the resource that creates it (to depend on)."""

    name: str
    resource: pulumi.Resource


@dataclass(frozen=True, slots=True)
class PinnedChart:
    """A Helm chart as the program pins it: its name in the repository, the version, the repository (an https
    index or ``oci://``) and the release it is installed as (its objects are named after the release)."""

    chart: str
    repository: str
    release: str


@dataclass(frozen=True, slots=True)
class KeptState:
    """The provider kept state is registered with: the same cluster, ``upsertExistingObjects`` on, so an
    object a rollback kept is taken back when the target rises again (module docstring)."""

    provider: pulumi.ProviderResource


def kept_opts(kept: KeptState, parent: pulumi.Resource,
              depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
    """Options of an object a rollback keeps: the kept-state provider and ``retain_on_delete``."""
    return pulumi.ResourceOptions(provider=kept.provider, parent=parent, depends_on=list(depends_on) or None,
                                  retain_on_delete=True)


def kept_annotations(annotations: Mapping[str, str] | None = None) -> dict[str, str]:
    return {**(annotations or {}), KEPT_ANNOTATION: KEPT}


def kept_claim(
    resource_name: str,
    *,
    name: str,
    namespace: pulumi.Input[str],
    size: str,
    kept: KeptState,
    parent: pulumi.Resource,
    storage_class: str | None = None,
    labels: Mapping[str, str] | None = None,
    access_modes: Sequence[str] = ("ReadWriteOnce",),
    depends_on: Sequence[pulumi.Resource] = (),
    volume_name: str | None = None,
) -> k8s.core.v1.PersistentVolumeClaim:
    """A PersistentVolumeClaim that outlives the rollback of the phase that made it, and is taken back when
    the target rises again (its data with it). Its Namespace must be kept too (``namespace(kept=...)``):
    deleting a Namespace deletes every claim in it. ``volume_name``: bind that PersistentVolume by name (with
    ``storage_class=""``), e.g. a NAS export; a deleted claim would leave a Retain volume Released and
    unbindable, which keeping the claim avoids."""
    return k8s.core.v1.PersistentVolumeClaim(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=dict(labels) if labels else None,
                                            annotations=kept_annotations()),
        spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
            access_modes=list(access_modes),
            storage_class_name=storage_class,
            volume_name=volume_name,
            resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": size}),
        ),
        opts=kept_opts(kept, parent, depends_on),
    )


def helm_chart(name: str, pinned: PinnedChart, version: str, namespace: pulumi.Input[str],
               values: Mapping[str, Any], opts: pulumi.ResourceOptions) -> k8s.helm.v4.Chart:
    """``pinned`` at ``version`` through ``helm.v4.Chart``, which renders it into real child resources (so
    the policy pack judges every object it deploys); every Chart of the program is made here, and
    ``charts.lock.yaml`` must pin it."""
    oci = pinned.repository.startswith("oci://")  # an OCI chart is named by its reference, with no repository
    return k8s.helm.v4.Chart(
        name,
        k8s.helm.v4.ChartArgs(
            chart=f"{pinned.repository.rstrip('/')}/{pinned.chart}" if oci else pinned.chart,
            version=version,
            name=pinned.release,
            namespace=namespace,
            repository_opts=None if oci else k8s.helm.v4.RepositoryOptsArgs(repo=pinned.repository),
            values=values,
        ),
        opts=opts,
    )


def kubernetes_opts(
    provider: pulumi.ProviderResource,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] | pulumi.Output[list[pulumi.Resource]] = (),
    *,
    protect: bool = False,
    ignore_changes: Sequence[str] = (),
    replace_on_changes: Sequence[str] = (),
    delete_before_replace: bool = False,
    custom_timeouts: pulumi.CustomTimeouts | None = None,
) -> pulumi.ResourceOptions:
    """Options of a Kubernetes child: the explicit provider, the component as parent, its dependencies (a list,
    or an Output of one: what later phases give, ``phases.Later``)."""
    return pulumi.ResourceOptions(
        provider=provider,
        parent=parent,
        depends_on=depends_on if isinstance(depends_on, pulumi.Output) else (list(depends_on) or None),
        protect=protect or None,
        ignore_changes=list(ignore_changes) or None,
        replace_on_changes=list(replace_on_changes) or None,
        delete_before_replace=delete_before_replace or None,
        custom_timeouts=custom_timeouts,
    )


def namespace(
    resource_name: str,
    name: str,
    provider: pulumi.ProviderResource,
    parent: pulumi.Resource,
    kept: KeptState | None = None,
) -> k8s.core.v1.Namespace:
    """The Namespace ``name``. Deleting a Namespace deletes everything in it, so one that holds kept state
    is kept too (``kept``: the rollback leaves it, raising the target takes it back)."""
    labels = {"app.kubernetes.io/managed-by": "pulumi"}
    if kept is not None:
        return k8s.core.v1.Namespace(
            resource_name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, labels=labels, annotations=kept_annotations()),
            opts=kept_opts(kept, parent),
        )
    return k8s.core.v1.Namespace(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, labels=labels),
        opts=kubernetes_opts(provider, parent),
    )


def secret_from_config(
    resource_name: str,
    *,
    name: str,
    namespace: pulumi.Input[str],
    string_data: Mapping[str, pulumi.Input[str]],
    provider: pulumi.ProviderResource,
    parent: pulumi.Resource,
    secret_type: str = "Opaque",
    labels: Mapping[str, str] | None = None,
    depends_on: Sequence[pulumi.Resource] | pulumi.Output[list[pulumi.Resource]] = (),
) -> k8s.core.v1.Secret:
    """A Secret whose every value is sent as a Pulumi secret, whatever the caller passed in."""
    return k8s.core.v1.Secret(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=dict(labels) if labels else None),
        type=secret_type,
        string_data={key: pulumi.Output.secret(value) for key, value in string_data.items()},
        opts=kubernetes_opts(provider, parent, depends_on),
    )


def _tag_annotation(tags: Sequence[str]) -> dict[str, str]:
    for tag in tags:
        if not re.fullmatch(r"tag:[a-z0-9][a-z0-9-]*", tag):
            raise ValueError(f"{tag!r} is not a tailnet tag (tag:<name>)")
    return {TAGS_ANNOTATION: ",".join(tags)} if tags else {}


def cluster_service(
    resource_name: str,
    *,
    name: str,
    namespace: pulumi.Input[str],
    labels: Mapping[str, str],
    port: int,
    provider: pulumi.ProviderResource,
    parent: pulumi.Resource,
    port_name: str = "http",
    target_port: int | None = None,
) -> k8s.core.v1.Service:
    """A ClusterIP Service ``name`` for the pods labelled ``labels``, TCP ``port`` (to ``target_port``)."""
    return k8s.core.v1.Service(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=dict(labels)),
        spec=k8s.core.v1.ServiceSpecArgs(type="ClusterIP", selector=dict(labels), ports=[k8s.core.v1.ServicePortArgs(
            name=port_name, port=port, target_port=target_port or port, protocol="TCP")]),
        opts=kubernetes_opts(provider, parent),
    )


def single_deployment(
    resource_name: str,
    *,
    name: str,
    namespace: pulumi.Input[str],
    labels: Mapping[str, str],
    pod: k8s.core.v1.PodSpecArgs,
    opts: pulumi.ResourceOptions,
) -> k8s.apps.v1.Deployment:
    """One replica of ``pod``, replaced with ``Recreate`` (never two at once: one database writer, one daemon
    per config directory)."""
    return k8s.apps.v1.Deployment(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=dict(labels)),
        spec=k8s.apps.v1.DeploymentSpecArgs(
            replicas=1,
            strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(labels)),
            template=k8s.core.v1.PodTemplateSpecArgs(metadata=k8s.meta.v1.ObjectMetaArgs(labels=dict(labels)),
                                                     spec=pod),
        ),
        opts=opts,
    )


def tailscale_ingress(
    resource_name: str,
    *,
    name: str,
    namespace: pulumi.Input[str],
    hostname: str,
    service_name: str,
    service_port: int,
    proxy_class: ProxyClassRef,
    provider: pulumi.ProviderResource,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
    tags: Sequence[str] = (),
) -> k8s.networking.v1.Ingress:
    """An Ingress the Tailscale operator serves at ``https://<hostname>.<tailnet>`` (TLS from Let's Encrypt,
    ending at the proxy), forwarding to ``service_name:service_port``. The host is the first label of
    ``tls.hosts``; it is created after its ProxyClass. ``tags``: the proxy device's tags (``tag:feed``), so the
    tailnet's grants to the name's tag reach it."""
    if "." in hostname:
        raise ValueError(f"Tailscale Ingress host {hostname!r} must be a short name (the tailnet adds the rest)")
    return k8s.networking.v1.Ingress(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=name,
            namespace=namespace,
            labels={PROXY_CLASS_KEY: proxy_class.name},
            annotations={PROXY_CLASS_KEY: proxy_class.name, **_tag_annotation(tags)},
        ),
        spec=k8s.networking.v1.IngressSpecArgs(
            ingress_class_name=TAILSCALE,
            default_backend=k8s.networking.v1.IngressBackendArgs(
                service=k8s.networking.v1.IngressServiceBackendArgs(
                    name=service_name,
                    port=k8s.networking.v1.ServiceBackendPortArgs(number=service_port),
                ),
            ),
            tls=[k8s.networking.v1.IngressTLSArgs(hosts=[hostname])],
        ),
        opts=kubernetes_opts(provider, parent, [proxy_class.resource, *depends_on]),
    )


def tailscale_load_balancer(
    resource_name: str,
    *,
    name: str,
    namespace: pulumi.Input[str],
    hostname: str,
    selector: Mapping[str, str],
    port: int,
    proxy_class: ProxyClassRef,
    provider: pulumi.ProviderResource,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
    custom_timeouts: pulumi.CustomTimeouts | None = None,
    tags: Sequence[str] = (),
    target_port: int | None = None,
) -> k8s.core.v1.Service:
    """A LoadBalancer Service the Tailscale operator exposes as the device ``<hostname>`` (TCP ``port``, to the
    pods' ``target_port``, default the same).

    The operator does not rename a device whose ``tailscale.com/hostname`` changes, so a new hostname
    replaces the Service, deleting the old one first (same Kubernetes name). Pulumi waits for a Pod behind
    the selector before the Service is ready: give ``custom_timeouts`` when that Pod is slow to come."""
    return k8s.core.v1.Service(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=name,
            namespace=namespace,
            labels={PROXY_CLASS_KEY: proxy_class.name},
            annotations={HOSTNAME_ANNOTATION: hostname, PROXY_CLASS_KEY: proxy_class.name, **_tag_annotation(tags)},
        ),
        spec=k8s.core.v1.ServiceSpecArgs(
            type="LoadBalancer",
            load_balancer_class=TAILSCALE,
            selector=dict(selector),
            ports=[k8s.core.v1.ServicePortArgs(name=f"tcp-{port}", port=port, target_port=target_port or port,
                                               protocol="TCP")],
        ),
        opts=kubernetes_opts(
            provider,
            parent,
            [proxy_class.resource, *depends_on],
            replace_on_changes=[f'metadata.annotations["{HOSTNAME_ANNOTATION}"]'],
            delete_before_replace=True,
            custom_timeouts=custom_timeouts,
        ),
    )
