"""The cutover building block under mocks: the legacy service stops only after the new workload is ready (or
staged, with data to carry), the name is released only after the new workload serves, the Ingress registers
last, and no secret reaches a command string or the plan."""

from __future__ import annotations

import itertools
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


def test_without_data_the_workload_is_ready_before_the_legacy_stops_and_the_name_moves(feed_run: MockRun) -> None:
    ingress = feed_run.named("feed-ingress")
    workload = feed_run.named("feed-workload")
    retire = feed_run.named("feed-cutover-retirement-retire")
    release = feed_run.named("feed-cutover-release-service")
    precondition = feed_run.named("feed-cutover-retirement-precondition")
    assert ingress["urn"] in {r["urn"] for r in feed_run.of_type("kubernetes:networking.k8s.io/v1:Ingress")}
    # ready -> stopped -> released -> Ingress; and so the rollback (reverse) restarts the legacy service
    # before the workload goes
    assert feed_run.depends_on(retire, workload) and feed_run.depends_on(precondition, workload)
    assert feed_run.depends_on(release, retire) and feed_run.depends_on(ingress, release)
    # the precondition (a backup check in phase 3) runs before anything is stopped
    assert precondition["urn"] in retire["options"]["dependsOn"]
    assert not feed_run.depends_on(retire, release) and not feed_run.depends_on(precondition, retire)
    assert not feed_run.depends_on(workload, retire), "the workload must not wait for the stop"


def test_with_data_the_final_sync_runs_between_the_stop_and_the_scale_up(feed_with_data_run: MockRun) -> None:
    run_ = feed_with_data_run
    workload, retire = run_.named("feed-workload"), run_.named("feed-cutover-retirement-retire")
    sync, scale_up = run_.named("feed-final-sync"), run_.named("feed-scale-up")
    release, ingress = run_.named("feed-cutover-release-service"), run_.named("feed-ingress")
    assert workload["inputs"]["spec"]["replicas"] == 0, "staged: not serving before the legacy stops"
    # staged -> stopped -> final sync -> scaled up -> released -> Ingress
    chain = [workload, retire, sync, scale_up, release, ingress]
    for before, after in itertools.pairwise(chain):
        assert run_.depends_on(after, before), f"{after['name']} must wait for {before['name']}"
    assert not run_.depends_on(sync, release) and not run_.depends_on(retire, sync)
    assert run_.named("feed-cutover")["inputs"]["order"] == "with data"


def test_the_ingress_waits_for_its_proxy_class(feed_run: MockRun) -> None:
    # the ProxyClass must exist before the Ingress names it
    assert feed_run.named("proxy-class")["urn"] in feed_run.named("feed-ingress")["options"]["dependsOn"]


def test_the_ingress_is_a_tailscale_ingress_for_the_short_name(feed_run: MockRun) -> None:
    ingress = feed_run.named("feed-ingress")["inputs"]
    # the homelab's own name (<backend Service>-tailscale), so adopting the live cluster imports it
    assert ingress["metadata"]["name"] == "miniflux-tailscale" and ingress["metadata"]["namespace"] == "miniflux"
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


def ingress_args(hostname: str, legacy: LegacyClaim | None, ready: bool = True, carry: bool = False) -> AppIngressArgs:
    return AppIngressArgs(provider=object(), namespace="miniflux", hostname=hostname,  # type: ignore[arg-type]
                          backend=IngressBackend("miniflux", 8080),
                          proxy_class=ProxyClassRef("default", object()), legacy=legacy,  # type: ignore[arg-type]
                          ready=(object(),) if ready else (),  # type: ignore[arg-type]
                          carry=(lambda stopped: stopped) if carry else None)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: LegacyClaim(), "needs a retirement, a release or both"),
        (lambda: LegacyClaim(retirement("svc:feed"), release("svc:pg")),
         "clears the serve entry of svc:feed but the release deletes svc:pg"),
        (lambda: ingress_args("feed", LegacyClaim(release=release("svc:pg"))), "releases 'pg', another name"),
        (lambda: ingress_args("feed.tail8d86e.ts.net", None), "must be a short lower-case name"),
        (lambda: IngressBackend("miniflux", 0), "is not a port"),
        (lambda: ingress_args("feed", LegacyClaim(retirement("svc:feed")), ready=False),
         "needs the new workload it waits for"),
        (lambda: ingress_args("feed", None, carry=True), "`carry` is the data move of a cutover"),
    ],
)
def test_a_wrong_claim_is_refused_before_anything_registers(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_a_claim_without_a_serve_entry_may_release_any_service() -> None:
    claim = LegacyClaim(retirement(None), release("svc:feed"))
    assert claim.released_name == "feed"
    assert ingress_args("feed", claim).object_name == "miniflux-tailscale"
