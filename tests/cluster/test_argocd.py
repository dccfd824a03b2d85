"""Argo CD as phase 1 registers it: pinned chart and images, server.insecure, forge credentials, Ingress."""

from __future__ import annotations

from phase_runner import Run

import phases

FORGE_HOST_KEY = phases.setting_specs()["argocd.forgeHostKey"].stand_in  # what the offline plan uses


def test_chart_is_pinned_from_argo_helm(phase1: Run) -> None:
    inputs = phase1.named("argocd-chart")["inputs"]
    assert inputs["chart"] == "argo-cd"
    assert inputs["repositoryOpts"] == {"repo": "https://argoproj.github.io/argo-helm"}
    assert inputs["version"] == "10.1.1"
    assert inputs["namespace"] == "argocd"
    assert inputs["name"] == "argocd"
    assert inputs["values"]["fullnameOverride"] == "argocd"  # so the server Service is argocd-server


def test_chart_values_pin_every_image(phase1: Run) -> None:
    values = phase1.named("argocd-chart")["inputs"]["values"]
    assert values["global"]["image"] == {"repository": "quay.io/argoproj/argocd", "tag": "v3.4.4"}
    assert values["dex"]["image"] == {"repository": "ghcr.io/dexidp/dex", "tag": "v2.45.1"}
    assert values["redis"]["image"] == {"repository": "ecr-public.aws.com/docker/library/redis",
                                        "tag": "8.2.3-alpine"}


def test_tls_ends_at_the_tailscale_ingress_and_forge_key_is_known(phase1: Run) -> None:
    configs = phase1.named("argocd-chart")["inputs"]["values"]["configs"]
    assert configs["params"] == {"server.insecure": True}
    assert configs["ssh"]["extraHosts"] == f"[indri.tail8d86e.ts.net]:2200 {FORGE_HOST_KEY}"


def test_forge_repo_credential_template(phase1: Run) -> None:
    secret = phase1.named("argocd-repo-creds-forge")
    metadata = secret["inputs"]["metadata"]
    assert metadata == {"name": "repo-creds-forge", "namespace": "argocd",
                        "labels": {"argocd.argoproj.io/secret-type": "repo-creds"}}
    assert secret["inputs"]["stringData"] == "[secret]"
    data = secret["revealed"]["stringData"]
    assert data["type"] == "git"
    assert data["url"] == "ssh://forgejo@indri.tail8d86e.ts.net:2200/eblume/"
    assert "insecure" not in data  # the host key is pinned in known hosts instead
    fake_key = phase1.fake_secrets["blumeops:argocd.forgeSshPrivateKey"]
    assert data["sshPrivateKey"] == fake_key + "\n"  # a final newline, which Argo CD's ssh needs


def test_ingress_serves_argocd_server_on_the_tailnet(phase1: Run) -> None:
    ingress = phase1.named("argocd-ingress")
    inputs = ingress["inputs"]
    assert inputs["metadata"]["name"] == "argocd-server-tailscale"  # the homelab's own name (facts §3.3)
    assert inputs["metadata"]["namespace"] == "argocd"
    assert inputs["metadata"]["labels"] == {"tailscale.com/proxy-class": "default"}
    assert inputs["metadata"]["annotations"] == {"tailscale.com/proxy-class": "default"}
    assert inputs["spec"] == {
        "ingressClassName": "tailscale",
        "defaultBackend": {"service": {"name": "argocd-server", "port": {"number": 80}}},
        "tls": [{"hosts": ["argocd"]}],
    }
    assert phase1.exports["endpoints"]["argocd"] == "https://argocd.tail8d86e.ts.net"
