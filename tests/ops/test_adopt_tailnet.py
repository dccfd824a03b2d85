"""``python -m ops adopt --at 6 --cluster <snapshot>`` end to end: the tailnet read through a loopback stand-in of
the Tailscale API holding the homelab's policy, devices and Services (tests/ops/homelab.py, from the facts), the
cluster from its snapshot. The import's reads succeed and write nothing; the first update changes exactly what the
report lists; the document it writes is what ``blumeops:adopt`` takes."""

from __future__ import annotations

import argparse
import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops import adopt
from ops import plan as offline_plan
from ops.stack import ROOT, load_stack
from tests.ops import homelab
from tests.servers.tailscale_api import CLIENT_ID, CLIENT_SECRET, TOKEN, FakeTailscaleApi


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTailscaleApi]:
    for name in ("TAILSCALE_API_KEY", "OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TAILSCALE_OAUTH_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("TAILSCALE_OAUTH_CLIENT_SECRET", CLIENT_SECRET)
    with homelab.tailnet_api() as fake:
        yield fake


@pytest.fixture
def out() -> Iterator[str]:
    relative = f"build/tests/adopt-{uuid.uuid4().hex[:12]}.json"
    yield relative
    (ROOT / relative).unlink(missing_ok=True)


def run_adopt(api: FakeTailscaleApi, snapshot: Path, out: str) -> int:
    args = argparse.Namespace(stack="indri", at="6", cluster=str(snapshot), tailscale_api=api.url, node_id=None,
                              out=str(ROOT / out))
    return adopt.command(args)


def tailnet_changes(report: str) -> list[str]:
    return [line.strip()[2:] for line in report.splitlines()
            if line.strip().startswith(("- the tailnet policy", "- the tags of", "- the Tailscale Service"))]


def test_the_reads_succeed_write_nothing_and_the_document_is_what_the_plan_imports(
        api: FakeTailscaleApi, out: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = tmp_path / "cluster.json"
    snapshot.write_text(homelab.snapshot(homelab.without_applications()))
    assert run_adopt(api, snapshot, out) == 0, capsys.readouterr().err
    report = capsys.readouterr().err
    assert api.writes == []  # the import reads: GETs only
    paths = {path.split("?", 1)[0] for method, path in api.requests if method == "GET"}
    assert {"/api/v2/tailnet/-/acl", "/api/v2/device/nIndri1CNTRL", "/api/v2/device/nSifaka2CNTRL",
            "/api/v2/tailnet/-/vip-services/svc:registry", "/api/v2/tailnet/-/vip-services/svc:k8s"} <= paths
    document = json.loads((ROOT / out).read_text())
    ids = {entry["name"]: entry["id"] for entry in document["resources"]}
    assert ids["tailnet-indri-tags"] == "nIndri1CNTRL" and ids["tailnet-sifaka-tags"] == "nSifaka2CNTRL"
    assert ids["tailnet-acl"] == "acl" and ids["tailnet-registry"] == "svc:registry"
    assert ids["blumeops-pg-cluster"] == "databases/blumeops-pg"
    # what the first update changes on the tailnet: the policy text the program owns, indri's tags (the legacy
    # service tags the program keeps until phase 9 back, the stale tag:loki off), the Services' comments
    changes = tailnet_changes(report)
    assert changes[0].startswith("the tailnet policy: replaced by the program's")
    assert changes[1:] == [
        "the tags of indri: adds tag:devpi, tag:feed, tag:grafana, tag:kiwix, tag:pg; removes tag:loki",
        "the Tailscale Service svc:registry: updated (comment)",
        "the Tailscale Service svc:k8s: updated (comment)",
    ]

    # the document is what blumeops:adopt takes: the plan then imports exactly it
    stack = load_stack("indri", "6")
    stack.config["blumeops:adopt"] = out
    plan = offline_plan.build_plan(stack, charts_required=False, try_pull=False)
    imported = {r["name"]: r["options"]["import"] for r in plan.resources if r["options"]["import"]}
    assert imported == ids


def _write(api: FakeTailscaleApi, method: str, path: str, body: bytes, content_type: str, **headers: str) -> None:
    request = urllib.request.Request(api.url + path, data=body, method=method,
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": content_type,
                                              **headers})
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200


def test_after_the_listed_changes_the_tailnet_is_the_plans(api: FakeTailscaleApi) -> None:
    """The first update, as the provider would make it for each listed change (tailscale_acl POSTs the policy,
    tailscale_device_tags POSTs the tags, tailscale_service PUTs the Service): afterwards the adoption finds
    nothing left to change, and nothing else was written (sifaka's tags, svc:forge)."""
    document = offline_plan.build_plan(load_stack("indri", "6"), charts_required=False, try_pull=False).document
    cluster = adopt.read_cluster(homelab.snapshot(homelab.without_applications()))
    live = adopt.read_live_tailnet(document, api.url, {"TAILSCALE_OAUTH_CLIENT_ID": CLIENT_ID,
                                                            "TAILSCALE_OAUTH_CLIENT_SECRET": CLIENT_SECRET})
    before = adopt.build_adoption(document, "6", None, cluster, live)
    resources = {r["name"]: r for r in document["resources"]}
    _write(api, "POST", "/api/v2/tailnet/-/acl", resources["tailnet-acl"]["inputs"]["acl"].encode(),
           "application/hujson", **{"If-Match": live.policy_etag})
    _write(api, "POST", "/api/v2/device/nIndri1CNTRL/tags",
           json.dumps({"tags": resources["tailnet-indri-tags"]["inputs"]["tags"]}).encode(), "application/json")
    for name in ("tailnet-registry", "tailnet-k8s"):
        inputs = resources[name]["inputs"]
        current = live.services[inputs["name"]]
        _write(api, "PUT", f"/api/v2/tailnet/-/vip-services/{inputs['name']}",
               json.dumps({**current, **{k: inputs[k] for k in ("ports", "comment")}}).encode(), "application/json")
    assert len([c for c in before.changes if c.startswith(("the tailnet", "the tags", "the Tailscale"))]) == 4
    written = {path for _, path, _ in api.writes}
    assert written == {"/api/v2/tailnet/-/acl", "/api/v2/device/nIndri1CNTRL/tags",
                       "/api/v2/tailnet/-/vip-services/svc:registry", "/api/v2/tailnet/-/vip-services/svc:k8s"}
    again = adopt.read_live_tailnet(document, api.url, {"TAILSCALE_OAUTH_CLIENT_ID": CLIENT_ID,
                                                             "TAILSCALE_OAUTH_CLIENT_SECRET": CLIENT_SECRET})
    after = adopt.build_adoption(document, "6", None, cluster, again)
    assert [c for c in after.changes if c.startswith(("the tailnet", "the tags", "the Tailscale"))] == []
    assert again.device("sifaka") == live.device("sifaka")


def test_a_device_missing_from_the_tailnet_or_a_refused_token_stops_it(
        api: FakeTailscaleApi, out: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot = tmp_path / "cluster.json"
    snapshot.write_text(homelab.snapshot(homelab.without_applications()))
    api.devices = [d for d in api.devices if d["hostname"] != "sifaka"]
    assert run_adopt(api, snapshot, out) == 1
    assert "the device sifaka is not in the tailnet" in capsys.readouterr().err
    assert not (ROOT / out).exists()
    monkeypatch.setenv("TAILSCALE_OAUTH_CLIENT_SECRET", "tskey-client-wrong")
    assert run_adopt(api, snapshot, out) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "tskey-client-wrong" not in err and not (ROOT / out).exists()


def test_while_argocd_still_manages_the_homelab_nothing_is_written(
        api: FakeTailscaleApi, out: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = tmp_path / "cluster.json"
    snapshot.write_text(homelab.snapshot())
    assert run_adopt(api, snapshot, out) == 1
    err = capsys.readouterr().err
    assert "the adoption at phase 6 is refused" in err and "argocd app delete apps --cascade=false" in err
    assert not (ROOT / out).exists()



def test_the_runbook_of_the_adoption_names_the_steps_in_the_homelabs_terms(
        api: FakeTailscaleApi, tmp_path: Path) -> None:
    import io

    from ops import runbook

    snapshot = tmp_path / "cluster.json"
    snapshot.write_text(homelab.snapshot())
    out = io.StringIO()
    args = argparse.Namespace(adopt="6", stack="indri", source=None, target=None, cluster=str(snapshot),
                              tailscale_api=api.url)
    assert runbook.command(args, out) == 0
    text = out.getvalue()
    steps = [line for line in text.splitlines() if line[:1].isdigit() and ". " in line[:4]]
    assert f"{len(steps)} manual steps" in text
    deletes = [line.strip() for line in text.splitlines() if line.strip().startswith("argocd app delete")]
    assert deletes[0] == "argocd app delete apps --cascade=false" and len(deletes) == 11
    assert "pulumi config set blumeops:adopt adopt/indri.json" in text and "blumeops:phase 6" in text
    assert "`pulumi config rm blumeops:adopt -s indri`" in text
    assert "- PersistentVolumeClaim torrent/transmission-config" in text  # new, empty state, said so
    assert "Then the live Service databases/blumeops-pg-tailscale holds the name pg" in text
    assert api.writes == []
    without = io.StringIO()
    runbook.command(argparse.Namespace(adopt="6", stack="indri", source=None, target=None, cluster=None,
                                       tailscale_api=api.url), without)
    assert "each Application the previous step names" in without.getvalue()
