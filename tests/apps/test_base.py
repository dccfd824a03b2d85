"""The cutover building block under mocks: the Ingress registers only after the host's service is retired and
the legacy Tailscale Service deleted, in that order, and no secret reaches a command string or the plan."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from components.apps import AppIngressArgs, IngressBackend, LegacyClaim
from components.cluster.objects import ProxyClassRef
from components.host import BrewService, LegacyServiceRetirementArgs
from components.tailnet import TailnetNameReleaseArgs
from tests.apps import programs
from tests.apps.mock_run import MockRun


def test_the_ingress_claims_the_name_after_the_retirement_and_the_release(feed_run: MockRun) -> None:
    ingress = feed_run.named("feed-ingress")
    retire = feed_run.named("feed-cutover-retirement-retire")
    release = feed_run.named("feed-cutover-release-service")
    precondition = feed_run.named("feed-cutover-retirement-precondition")
    assert retire["urn"] in ingress["options"]["dependsOn"]
    assert release["urn"] in ingress["options"]["dependsOn"]
    assert ingress["urn"] in {r["urn"] for r in feed_run.of_type("kubernetes:networking.k8s.io/v1:Ingress")}
    # the Service goes after the host stopped serving it, and comes back (delete order) before it is served
    assert release["options"]["dependsOn"] == [retire["urn"]]
    # the precondition (a backup check in phase 3) runs before anything is stopped
    assert retire["options"]["dependsOn"] == [precondition["urn"]]
    assert not feed_run.depends_on(retire, release) and not feed_run.depends_on(precondition, retire)
    # the ProxyClass must exist before the Ingress names it
    assert feed_run.named("proxy-class")["urn"] in ingress["options"]["dependsOn"]


def test_the_ingress_is_a_tailscale_ingress_for_the_short_name(feed_run: MockRun) -> None:
    ingress = feed_run.named("feed-ingress")["inputs"]
    assert ingress["metadata"]["name"] == "feed-tailscale" and ingress["metadata"]["namespace"] == "miniflux"
    assert ingress["metadata"]["annotations"] == {"tailscale.com/proxy-class": "default"}
    assert ingress["spec"]["ingressClassName"] == "tailscale"
    assert ingress["spec"]["tls"] == [{"hosts": ["feed"]}]
    assert ingress["spec"]["defaultBackend"] == {"service": {"name": "miniflux", "port": {"number": 8080}}}


def test_the_host_steps_carry_their_identity_and_replace_by_deleting_first(feed_run: MockRun) -> None:
    retire = feed_run.named("feed-cutover-retirement-retire")
    release = feed_run.named("feed-cutover-release-service")
    assert retire["inputs"]["triggers"] == ["brew", "miniflux", "svc:feed",
                                            "/Users/erichblume/.local/state/blumeops/retired/brew-miniflux"]
    assert release["inputs"]["triggers"] == ["svc:feed", "-", "https://api.tailscale.com"]
    assert retire["options"]["deleteBeforeReplace"] and release["options"]["deleteBeforeReplace"]
    assert retire["inputs"]["create"] == "/bin/bash -euo pipefail -s -- create"
    assert retire["inputs"]["delete"] == "/bin/bash -euo pipefail -s -- delete"


def test_the_oauth_secret_travels_only_in_the_secret_stdin(feed_run: MockRun) -> None:
    release = feed_run.named("feed-cutover-release-service")
    assert release["inputs"]["stdin"] == "[secret]"
    assert release["inputs"]["logging"] == "none", "the step's output is not logged"
    assert programs.OAUTH_SECRET in release["revealed"]["stdin"], "the stdin does carry it (so the check can fail)"
    plan_form = json.dumps([r["inputs"] for r in feed_run.resources])
    for secret in programs.FAKE_SECRETS:
        assert secret not in plan_form
    for resource in feed_run.of_type("command:remote:Command"):
        for key in ("create", "delete", "update"):
            assert programs.OAUTH_SECRET not in str(resource["revealed"].get(key, ""))


def test_reviewers_read_the_scripts_the_steps_receive_with_the_secret_hidden(feed_run: MockRun) -> None:
    from components.host.script import reviewable

    # ops plan renders each step's script from its stdin; the components carry no second copy in their props
    assert "artifacts" not in feed_run.named("feed-cutover-retirement")["inputs"]
    assert "artifacts" not in feed_run.named("feed-cutover-release")["inputs"]
    retire_stdin = feed_run.named("feed-cutover-retirement-retire")["revealed"]["stdin"]
    assert "readonly SERVE_SERVICE=svc:feed" in reviewable(retire_stdin)
    release_stdin = feed_run.named("feed-cutover-release-service")["revealed"]["stdin"]
    assert programs.OAUTH_SECRET in release_stdin  # what the host receives
    shown = reviewable(release_stdin)
    assert "OAUTH_CLIENT_SECRET" in shown and programs.OAUTH_SECRET not in shown


# ---- arguments ---------------------------------------------------------------------------------------------


def retirement(serve: str | None) -> LegacyServiceRetirementArgs:
    return LegacyServiceRetirementArgs(host=programs.indri(), service=BrewService("miniflux", "/opt/homebrew/bin/brew"),
                                       serve_service=serve)


def release(service: str) -> TailnetNameReleaseArgs:
    return TailnetNameReleaseArgs(host=programs.indri(), service=service, oauth_client_id="id",
                                  oauth_client_secret=pulumi.Output.from_input("s"))


def ingress_args(hostname: str, legacy: LegacyClaim | None) -> AppIngressArgs:
    return AppIngressArgs(provider=object(), namespace="miniflux", hostname=hostname,  # type: ignore[arg-type]
                          backend=IngressBackend("miniflux", 8080),
                          proxy_class=ProxyClassRef("default", object()), legacy=legacy)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: LegacyClaim(), "needs a retirement, a release or both"),
        (lambda: LegacyClaim(retirement("svc:feed"), release("svc:pg")),
         "clears the serve entry of svc:feed but the release deletes svc:pg"),
        (lambda: ingress_args("feed", LegacyClaim(release=release("svc:pg"))), "releases 'pg', another name"),
        (lambda: ingress_args("feed.tail8d86e.ts.net", None), "must be a short lower-case name"),
        (lambda: IngressBackend("miniflux", 0), "is not a port"),
    ],
)
def test_a_wrong_claim_is_refused_before_anything_registers(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_a_claim_without_a_serve_entry_may_release_any_service() -> None:
    claim = LegacyClaim(retirement(None), release("svc:feed"))
    assert claim.released_name == "feed"
    assert ingress_args("feed", claim).object_name == "feed-tailscale"
