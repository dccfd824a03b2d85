"""The TailscaleOperator as phase 1 registers it: chart inputs, OAuth Secret, ProxyClass, DNSConfig, egress."""

from __future__ import annotations

import re

import pulumi
import pytest
from phase_runner import Run

from components.cluster import OauthCredentials, TailscaleOperator, TailscaleOperatorArgs
from components.cluster.tailscale_operator import oauth_client_description

VERSION = "1.102.3"
PROXY_IMAGE = f"docker.io/tailscale/tailscale:v{VERSION}"


def test_chart_is_pinned_from_the_tailscale_repository(phase1: Run) -> None:
    chart = phase1.named("tailscale-operator-chart")
    inputs = chart["inputs"]
    assert chart["type"] == "kubernetes:helm.sh/v4:Chart"
    assert inputs["chart"] == "tailscale-operator"
    assert inputs["repositoryOpts"] == {"repo": "https://pkgs.tailscale.com/helmcharts"}
    assert inputs["version"] == VERSION
    assert inputs["namespace"] == "tailscale"


def test_chart_values_pin_images_and_use_the_precreated_oauth_secret(phase1: Run) -> None:
    values = phase1.named("tailscale-operator-chart")["inputs"]["values"]
    assert values["operatorConfig"]["image"] == {"repository": "docker.io/tailscale/k8s-operator",
                                                 "tag": f"v{VERSION}", "digest": ""}
    assert values["proxyConfig"]["image"] == {"repository": "docker.io/tailscale/tailscale",
                                              "tag": f"v{VERSION}", "digest": ""}
    assert values["operatorConfig"]["defaultTags"] == ["tag:k8s-operator"]
    assert values["proxyConfig"]["defaultTags"] == "tag:k8s"
    assert values["proxyConfig"]["defaultProxyClass"] == "default"
    # No credentials in values (the chart would render its own operator-oauth Secret from them).
    assert values["oauth"] == {"clientId": "", "clientSecret": "", "audience": ""}
    assert values["oauthSecretVolume"] == {"secret": {"secretName": "operator-oauth"}}


def test_oauth_secret_from_config(phase1: Run) -> None:
    secret = phase1.named("tailscale-operator-oauth")
    assert secret["inputs"]["metadata"] == {"name": "operator-oauth", "namespace": "tailscale"}
    assert secret["inputs"]["stringData"] == "[secret]"
    data = secret["revealed"]["stringData"]
    assert set(data) == {"client_id", "client_secret"}
    assert data["client_secret"] == phase1.fake_secrets["blumeops:operator.oauthClientSecret"]
    assert not phase1.of_type("tailscale:index/oauthClient:OauthClient")


def test_created_oauth_client_feeds_the_secret(phase1_created_client: Run) -> None:
    run = phase1_created_client
    (client,) = run.of_type("tailscale:index/oauthClient:OauthClient")
    assert client["name"] == "tailscale-operator-oauth-client"
    assert client["inputs"]["scopes"] == ["devices:core", "auth_keys", "services"]
    assert client["inputs"]["tags"] == ["tag:k8s-operator"]
    assert client["provider"] == run.named("tailscale")["urn"]
    # created after the tailnet policy that defines tag:k8s-operator
    assert run.named("tailnet-acl")["urn"] in client["options"]["dependsOn"]
    secret = run.named("tailscale-operator-oauth")
    assert client["urn"] in secret["options"]["dependsOn"]
    data = secret["revealed"]["stringData"]
    # the client's id (the mock engine's resource id) and key, not the configured client
    assert data["client_id"].startswith("tailscale-operator-oauth-client-")
    assert data["client_secret"] == run.fake_secrets["oauth client key"]


def test_proxy_class_pins_the_proxy_images(phase1: Run) -> None:
    proxy_class = phase1.named("tailscale-operator-proxy-class")
    inputs = proxy_class["inputs"]
    assert proxy_class["type"] == "kubernetes:tailscale.com/v1alpha1:ProxyClass"
    assert inputs["metadata"] == {"name": "default"}
    pod = inputs["spec"]["statefulSet"]["pod"]
    assert pod["tailscaleContainer"]["image"] == PROXY_IMAGE
    assert pod["tailscaleInitContainer"]["image"] == PROXY_IMAGE


def test_dns_config_pins_the_nameserver(phase1: Run) -> None:
    dns = phase1.named("tailscale-operator-dns-config")
    assert dns["inputs"]["metadata"] == {"name": "ts-dns"}
    assert dns["inputs"]["spec"] == {"nameserver": {"image": {"repo": "docker.io/tailscale/k8s-nameserver",
                                                              "tag": f"v{VERSION}"}}}


def test_forge_egress_reaches_indri_on_web_and_ssh_ports(phase1: Run) -> None:
    egress = phase1.named("tailscale-operator-egress-forge")
    inputs = egress["inputs"]
    assert inputs["metadata"]["name"] == "forge"
    assert inputs["metadata"]["namespace"] == "tailscale"
    assert inputs["metadata"]["annotations"]["tailscale.com/tailnet-fqdn"] == "indri.tail8d86e.ts.net"
    assert inputs["metadata"]["labels"]["tailscale.com/proxy-class"] == "default"
    assert inputs["spec"]["type"] == "ExternalName"
    assert inputs["spec"]["externalName"] == "placeholder"
    assert [port["port"] for port in inputs["spec"]["ports"]] == [3001, 2200]
    # the operator rewrites externalName: Pulumi must not fight it
    assert egress["options"]["ignoreChanges"] == ["spec.externalName"]


def test_exactly_one_source_of_credentials_is_required() -> None:
    provider = pulumi.ProviderResource.__new__(pulumi.ProviderResource)  # never registered
    with pytest.raises(ValueError, match="exactly one"):
        TailscaleOperator("x", TailscaleOperatorArgs(provider=provider, version=VERSION))
    with pytest.raises(ValueError, match="exactly one"):
        TailscaleOperator("x", TailscaleOperatorArgs(provider=provider, version=VERSION,
                                                     oauth=OauthCredentials("id", "secret"),
                                                     tailscale_provider=provider))


def test_the_created_oauth_client_description_is_one_tailscale_accepts(phase1_created_client: Run) -> None:
    (client,) = phase1_created_client.of_type("tailscale:index/oauthClient:OauthClient")
    description = client["inputs"]["description"]
    assert description == "Kubernetes operator tailscale-operator"
    assert re.fullmatch(r"[A-Za-z0-9 -]{1,50}", description)


@pytest.mark.parametrize("name", ["operator (main)", "x" * 31])
def test_a_name_that_makes_a_refused_description_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="letters, digits, hyphens and spaces"):
        oauth_client_description(name)
