"""The homelab as it runs after its own phase 6, written from ../shared/docs/facts.md (never from the plan), for the
adoption tests: the cluster as ``kubectl get ... -o json`` lists it, and the tailnet as the Tailscale API holds it.

Only what the facts record is here; an object the facts do not describe is absent (the adoption then creates it).
ArgoCD 3 tracks what it syncs with the ``argocd.argoproj.io/tracking-id`` annotation
(``<app>:<group>/<kind>:<namespace>/<name>``); what was applied by hand (the secrets, §0.2: ``op inject | kubectl
apply``; the namespaces made with ``kubectl create namespace``, §3.4) carries none, and a namespace ArgoCD made
with ``CreateNamespace=true`` carries none either. A StatefulSet's claim is made by its controller (no tracking).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.servers.tailscale_api import FakeTailscaleApi, device

TAILNET = "tail8d86e.ts.net"

# §3.3 Applications, §4.2 grafana / grafana-config, §6.3 miniflux, §7.3 devpi, §9.3 torrent / kiwix.
APPLICATIONS = ("apps", "argocd", "tailscale-operator", "cloudnative-pg", "blumeops-pg", "grafana", "grafana-config",
                "miniflux", "devpi", "torrent", "kiwix")


def _object(api_version: str, kind: str, name: str, namespace: str | None = None, app: str | None = None,
            labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
            **body: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "uid": f"uid-{kind.lower()}-{name}", "resourceVersion": "4711"}
    if namespace:
        metadata["namespace"] = namespace
    notes = dict(annotations or {})
    if app:
        group = api_version.split("/", 1)[0] if "/" in api_version else ""
        notes["argocd.argoproj.io/tracking-id"] = f"{app}:{group}/{kind}:{namespace or ''}/{name}"
    if notes:
        metadata["annotations"] = notes
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **body}


def _ingress(namespace: str, name: str, host: str, service: str, port: int, app: str) -> dict[str, Any]:
    return _object("networking.k8s.io/v1", "Ingress", name, namespace, app,
                   annotations={"tailscale.com/proxy-class": "default"},
                   spec={"ingressClassName": "tailscale", "tls": [{"hosts": [host]}],
                         "defaultBackend": {"service": {"name": service, "port": {"number": port}}}})


def _claim(namespace: str, name: str, size: str, modes: list[str], storage_class: str, volume: str,
           app: str | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return _object("v1", "PersistentVolumeClaim", name, namespace, app, labels=labels,
                   spec={"accessModes": modes, "resources": {"requests": {"storage": size}},
                         "storageClassName": storage_class, "volumeName": volume, "volumeMode": "Filesystem"},
                   status={"phase": "Bound"})


def cluster_objects() -> list[dict[str, Any]]:
    objects = [_object("v1", "Namespace", name) for name in
               ("tailscale", "argocd", "cnpg-system", "databases", "monitoring", "miniflux", "devpi", "torrent",
                "kiwix")]
    objects += [
        # §3.3 the Tailscale operator's kustomization; its Secret applied by hand
        _object("v1", "Secret", "operator-oauth", "tailscale", type="Opaque", data={"client_id": "ZmFrZQ=="}),
        _object("tailscale.com/v1alpha1", "ProxyClass", "default", app="tailscale-operator", spec={"statefulSet": {
            "pod": {"tailscaleContainer": {"image": "docker.io/tailscale/tailscale:v1.92.5"},
                    "tailscaleInitContainer": {"image": "docker.io/tailscale/tailscale:v1.92.5"}}}}),
        _object("tailscale.com/v1alpha1", "DNSConfig", "ts-dns", app="tailscale-operator", spec={"nameserver": {
            "image": {"repo": "docker.io/tailscale/k8s-nameserver", "tag": "stable"}}}),
        _object("v1", "Service", "forge", "tailscale", "tailscale-operator",
                annotations={"tailscale.com/tailnet-fqdn": f"indri.{TAILNET}", "tailscale.com/proxy-class": "default"},
                spec={"type": "ExternalName", "externalName": "ts-forge-x7k2p.tailscale.svc.cluster.local",
                      "ports": [{"port": 3001, "targetPort": 3001, "protocol": "TCP"}]}),
        # §3.3 ArgoCD: the repo credentials by hand, the Ingress from its own kustomization
        _object("v1", "Secret", "repo-creds-forge", "argocd", labels={"argocd.argoproj.io/secret-type": "repo-creds"},
                type="Opaque", data={"sshPrivateKey": "ZmFrZQ=="}),
        _ingress("argocd", "argocd-server-tailscale", "argocd", "argocd-server", 80, "argocd"),
        # §3.3 the PostgreSQL cluster (with §5.3's borgmatic role, §6's miniflux owner, §12.5's image)
        _object("v1", "Secret", "blumeops-pg-eblume", "databases", type="kubernetes.io/basic-auth"),
        _object("v1", "Secret", "blumeops-pg-borgmatic", "databases", type="kubernetes.io/basic-auth"),
        _object("postgresql.cnpg.io/v1", "Cluster", "blumeops-pg", "databases", "blumeops-pg", spec={
            "instances": 1, "imageName": "ghcr.io/cloudnative-pg/postgresql:18",
            "storage": {"size": "10Gi", "storageClass": "standard"},
            "bootstrap": {"initdb": {"database": "miniflux", "owner": "miniflux"}},
            "managed": {"roles": [
                {"name": "eblume", "login": True, "superuser": True, "createdb": True, "createrole": True,
                 "connectionLimit": -1, "ensure": "present", "inherit": True,
                 "passwordSecret": {"name": "blumeops-pg-eblume"}},
                {"name": "borgmatic", "login": True, "connectionLimit": -1, "ensure": "present", "inherit": True,
                 "inRoles": ["pg_read_all_data"], "passwordSecret": {"name": "blumeops-pg-borgmatic"}}]},
            "resources": {"requests": {"memory": "256Mi", "cpu": "100m"}, "limits": {"memory": "1Gi", "cpu": "500m"}},
            "postgresql": {"parameters": {"max_connections": "50", "shared_buffers": "128MB",
                                          "password_encryption": "scram-sha-256"},
                           "pg_hba": ["host all all 0.0.0.0/0 scram-sha-256", "host all all ::/0 scram-sha-256"]}},
            status={"phase": "Cluster in healthy state"}),
        # §6.3: the LoadBalancer that gives the cluster the name pg (renamed from k8s-pg in P4)
        _object("v1", "Service", "blumeops-pg-tailscale", "databases", "blumeops-pg",
                annotations={"tailscale.com/hostname": "pg", "tailscale.com/proxy-class": "default"},
                spec={"type": "LoadBalancer", "loadBalancerClass": "tailscale", "clusterIP": "10.96.41.7",
                      "selector": {"cnpg.io/cluster": "blumeops-pg", "role": "primary"},
                      "ports": [{"port": 5432, "protocol": "TCP"}]}),
        # §4.3 Grafana: its admin Secret by hand, its claim from the chart, the Ingress and dashboards from
        # grafana-config
        _object("v1", "Secret", "grafana-admin", "monitoring", type="Opaque"),
        _claim("monitoring", "grafana", "1Gi", ["ReadWriteOnce"], "standard", "pvc-7d1c0f3e", "grafana",
               labels={"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": "grafana"}),
        _object("v1", "ConfigMap", "grafana-dashboard-zot", "monitoring", "grafana-config",
                labels={"grafana_dashboard": "1"}, data={"zot.json": "{}"}),
        _object("v1", "ConfigMap", "grafana-dashboard-minikube", "monitoring", "grafana-config",
                labels={"grafana_dashboard": "1"}, data={"minikube.json": "{}"}),
        _ingress("monitoring", "grafana-tailscale", "grafana", "grafana", 80, "grafana-config"),
        # §6.3 Miniflux
        _object("v1", "Secret", "miniflux-db", "miniflux", type="Opaque"),
        _object("v1", "Service", "miniflux", "miniflux", "miniflux", spec={
            "type": "ClusterIP", "clusterIP": "10.96.12.80", "selector": {"app": "miniflux"},
            "ports": [{"name": "http", "port": 8080, "targetPort": 8080, "protocol": "TCP"}]}),
        _object("apps/v1", "Deployment", "miniflux", "miniflux", "miniflux", labels={"app": "miniflux"}, spec={
            "replicas": 1, "selector": {"matchLabels": {"app": "miniflux"}},
            "template": {"metadata": {"labels": {"app": "miniflux"}}, "spec": {"containers": [
                {"name": "miniflux", "image": "ghcr.io/miniflux/miniflux:2.2.16"}]}}}),
        _ingress("miniflux", "miniflux-tailscale", "feed", "miniflux", 8080, "miniflux"),
        # §7.3 devpi: the claim from the StatefulSet's template
        _object("v1", "Secret", "devpi-root", "devpi", type="Opaque"),
        _object("v1", "Service", "devpi", "devpi", "devpi", spec={
            "type": "ClusterIP", "clusterIP": "10.96.31.41", "selector": {"app": "devpi"},
            "ports": [{"name": "http", "port": 3141, "targetPort": 3141, "protocol": "TCP"}]}),
        _object("apps/v1", "StatefulSet", "devpi", "devpi", "devpi", labels={"app": "devpi"}, spec={
            "serviceName": "devpi", "replicas": 1, "selector": {"matchLabels": {"app": "devpi"}},
            "podManagementPolicy": "OrderedReady", "revisionHistoryLimit": 10,
            "template": {"metadata": {"labels": {"app": "devpi"}}, "spec": {"containers": [
                {"name": "devpi", "image": "registry.tail8d86e.ts.net/blumeops/devpi:latest"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "50Gi"}}}}]}),
        _claim("devpi", "data-devpi-0", "50Gi", ["ReadWriteOnce"], "standard", "pvc-3a9e61b2", labels={"app": "devpi"}),
        _ingress("devpi", "devpi-tailscale", "pypi", "devpi", 3141, "devpi"),
        # §9.3 Transmission on the share, Kiwix reading it
        _object("v1", "PersistentVolume", "torrents-nfs-pv", app="torrent", spec={
            "capacity": {"storage": "1Ti"}, "accessModes": ["ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
            "nfs": {"server": "sifaka", "path": "/volume1/torrents"}, "volumeMode": "Filesystem"},
            status={"phase": "Bound"}),
        _claim("torrent", "torrents-storage", "1Ti", ["ReadWriteMany"], "", "torrents-nfs-pv", "torrent"),
        _object("v1", "Service", "transmission", "torrent", "torrent", spec={
            "type": "ClusterIP", "clusterIP": "10.96.51.41", "selector": {"app": "transmission"},
            "ports": [{"name": "web", "port": 9091, "targetPort": 9091, "protocol": "TCP"}]}),
        _object("apps/v1", "Deployment", "transmission", "torrent", "torrent", labels={"app": "transmission"}, spec={
            "replicas": 1, "selector": {"matchLabels": {"app": "transmission"}},
            "template": {"metadata": {"labels": {"app": "transmission"}}, "spec": {"containers": [
                {"name": "transmission", "image": "lscr.io/linuxserver/transmission:4.0.6"}]}}}),
        _ingress("torrent", "transmission-tailscale", "torrent", "transmission", 9091, "torrent"),
        _object("v1", "Service", "kiwix", "kiwix", "kiwix", spec={
            "type": "ClusterIP", "clusterIP": "10.96.61.80", "selector": {"app": "kiwix"},
            "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]}),
        _object("apps/v1", "Deployment", "kiwix", "kiwix", "kiwix", labels={"app": "kiwix"}, spec={
            "replicas": 1, "selector": {"matchLabels": {"app": "kiwix"}},
            "template": {"metadata": {"labels": {"app": "kiwix"}}, "spec": {"containers": [
                {"name": "kiwix-serve", "image": "ghcr.io/kiwix/kiwix-serve:3.8.1"}]}}}),
        _ingress("kiwix", "kiwix-tailscale", "kiwix", "kiwix", 80, "kiwix"),
    ]
    # what the charts and the upstream manifests made (the program's charts apply over these)
    objects += [
        _object("apps/v1", "Deployment", "operator", "tailscale", "tailscale-operator", labels={"app": "operator"}),
        _object("apps/v1", "Deployment", "argocd-server", "argocd", "argocd"),
        _object("apps/v1", "Deployment", "cloudnative-pg", "cnpg-system", "cloudnative-pg",
                labels={"app.kubernetes.io/instance": "cloudnative-pg"}),
        _object("apps/v1", "Deployment", "grafana", "monitoring", "grafana",
                labels={"app.kubernetes.io/instance": "grafana"}),
    ]
    # the app-of-apps `apps` syncs every other Application from argocd/apps/ (§0.4)
    objects += [_object("argoproj.io/v1alpha1", "Application", app, "argocd", None if app == "apps" else "apps",
                        spec={"project": "default"}) for app in APPLICATIONS]
    return objects


def snapshot(objects: list[dict[str, Any]] | None = None) -> str:
    """As ``kubectl get <kinds> --all-namespaces -o json`` prints it."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
                       "items": copy.deepcopy(cluster_objects() if objects is None else objects)})


def without_applications(objects: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """After ``argocd app delete <app> --cascade=false`` for every Application: the objects stay, with their
    tracking annotations; only the Applications are gone."""
    return [o for o in (cluster_objects() if objects is None else objects) if o["kind"] != "Application"]


# §11.2 the policy file (HuJSON as the homelab's Pulumi project wrote it; logins are placeholders)
POLICY = """// Tailnet policy for tail8d86e.ts.net (pulumi/policy.hujson)
{
  "groups": {"group:allisonflix": ["admin@example.invalid", "member@example.invalid"]},
  "tagOwners": {
    "tag:blumeops": ["autogroup:admin", "tag:blumeops"], "tag:homelab": ["autogroup:admin", "tag:blumeops"],
    "tag:workstation": ["autogroup:admin", "tag:blumeops"], "tag:nas": ["autogroup:admin", "tag:blumeops"],
    "tag:grafana": ["autogroup:admin", "tag:blumeops"], "tag:kiwix": ["autogroup:admin", "tag:blumeops"],
    "tag:forge": ["autogroup:admin", "tag:blumeops"], "tag:devpi": ["autogroup:admin", "tag:blumeops"],
    "tag:loki": ["autogroup:admin", "tag:blumeops"], "tag:pg": ["autogroup:admin", "tag:blumeops"],
    "tag:feed": ["autogroup:admin", "tag:blumeops"], "tag:registry": ["autogroup:admin", "tag:blumeops"],
    "tag:k8s-api": ["autogroup:admin", "tag:blumeops"], "tag:k8s-operator": ["autogroup:admin", "tag:blumeops"],
    "tag:k8s": ["autogroup:admin", "tag:blumeops", "tag:k8s-operator"],
  },
  "grants": [
    {"src": ["autogroup:admin"], "dst": ["*"], "ip": ["*"]},
    {"src": ["autogroup:member"], "dst": ["tag:forge"], "ip": ["tcp:443", "tcp:22"]},
    {"src": ["tag:homelab"], "dst": ["tag:homelab"], "ip": ["*"]},
    {"src": ["tag:k8s"], "dst": ["tag:registry"], "ip": ["tcp:443"]},
    {"src": ["tag:k8s"], "dst": ["tag:homelab"], "ip": ["tcp:3001", "tcp:2200"]},
    {"src": ["tag:homelab"], "dst": ["tag:k8s"], "ip": ["tcp:443", "tcp:5432", "tcp:9187"]},
  ],
}
"""
# §11.1 the devices' tags; gilbert deliberately untagged; the operator's proxies tagged tag:k8s
DEVICES = (
    device("indri", "nIndri1CNTRL", "11001",
           ("tag:homelab", "tag:blumeops", "tag:forge", "tag:loki", "tag:registry", "tag:k8s-api"), os="macOS"),
    device("sifaka", "nSifaka2CNTRL", "11002", ("tag:nas", "tag:blumeops")),
    device("gilbert", "nGilbert3CNTRL", "11003", (), os="macOS"),
    device("feed", "nFeed4CNTRL", "11004", ("tag:k8s",)),
)
# Services made in the console (§12.6: svc:forge and svc:registry served by ansible, svc:k8s by the minikube role)
SERVICES = {
    "svc:registry": {"name": "svc:registry", "addrs": ["100.100.1.5", "fd7a:115c:a1e0::1:5"], "comment": "",
                     "ports": ["tcp:443"], "tags": ["tag:registry"], "annotations": {}},
    "svc:k8s": {"name": "svc:k8s", "addrs": ["100.100.1.6", "fd7a:115c:a1e0::1:6"], "comment": "",
                "ports": ["tcp:443"], "tags": ["tag:k8s-api"], "annotations": {}},
    "svc:forge": {"name": "svc:forge", "addrs": ["100.100.1.8", "fd7a:115c:a1e0::1:8"], "comment": "",
                  "ports": ["tcp:443", "tcp:22"], "tags": ["tag:forge"], "annotations": {}},
}


def tailnet_api() -> FakeTailscaleApi:
    """The Tailscale API's stand-in (not started) holding the homelab's policy, devices and Services."""
    return FakeTailscaleApi(policy=POLICY, devices=DEVICES, services=SERVICES)
