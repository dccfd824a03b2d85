"""Phase 6 as the program builds it: the brew Transmission stopped, its downloads and settings moved to the share,
Transmission at torrent and Kiwix at kiwix in the cluster after the move, the kiwix-serve agent and svc:kiwix
let go only once Kiwix serves, and nothing of the NAS's ever deleted."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from phase_runner import Run, run_phase

from ops import plan as offline_plan
from ops.stack import ROOT
from phases import settings as s
from phases.p6_kiwix_transmission import ZIM_TORRENTS, _torrent_urls, torrent_list

PlanOf = Callable[[str | None], offline_plan.Plan]
SHARED_LIST = ROOT.parent / "shared" / "data" / "kiwix-zim-torrents.txt"


@pytest.fixture(scope="module")
def phase6() -> Run:
    return run_phase("6")



def test_transmission_moves_with_its_data_before_anything_serves_torrent(phase6: Run) -> None:
    order = ["transmission-cutover-retirement-retire", "transmission-move-copy", "transmission-deployment",
             "transmission-ingress"]
    for earlier, later in itertools.pairwise(order):
        assert phase6.waits_for(later, earlier), f"{later} must wait for {earlier}"
    for staged in ("transmission-downloads", "transmission-config", "transmission-service", "transmission-torrents",
                   "transmission-namespace"):
        assert phase6.waits_for("transmission-cutover-retirement-retire", staged)
    assert not phase6.waits_for("transmission-cutover-retirement-retire", "transmission-deployment")
    retire = phase6.named("transmission-cutover-retirement-retire")["revealed"]["stdin"]
    assert "readonly KIND=brew" in retire and "readonly NAME=transmission-cli" in retire
    assert "readonly SERVE_SERVICE=''" in retire or "readonly SERVE_SERVICE=\n" in retire \
        or "SERVE_SERVICE=''" in retire
    move = phase6.named("transmission-move-copy")["revealed"]["stdin"]
    for line in ("readonly SOURCE_DIR=/Users/erichblume/transmission",
                 "readonly CONFIG_DIR=/opt/homebrew/var/transmission", "readonly MOUNT_POINT=/Volumes/torrents",
                 "readonly EXPORT=sifaka:/volume1/torrents", "readonly RSYNC=/opt/homebrew/bin/rsync"):
        assert line in move


def test_kiwix_waits_for_the_zims_then_takes_the_name_from_the_host(phase6: Run) -> None:
    order = ["transmission-move-copy", "kiwix-deployment", "kiwix-cutover-retirement-retire",
             "kiwix-cutover-release-service", "kiwix-ingress"]
    for earlier, later in itertools.pairwise(order):
        assert phase6.waits_for(later, earlier), f"{later} must wait for {earlier}"
    assert phase6.waits_for("kiwix-deployment", "torrents-share-probe")
    retire = phase6.named("kiwix-cutover-retirement-retire")["revealed"]["stdin"]
    assert "readonly NAME=mcquack.eblume.kiwix-serve" in retire and "readonly SERVE_SERVICE=svc:kiwix" in retire
    ingress = phase6.named("kiwix-ingress")["inputs"]
    assert ingress["metadata"]["annotations"]["tailscale.com/tags"] == "tag:kiwix"


def test_the_pod_runs_as_the_homelab_ran_it_and_keeps_its_config(phase6: Run) -> None:
    deployment = phase6.named("transmission-deployment")["inputs"]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["name"] == "config-import" and init["command"] == ["/bin/sh", "/scripts/transmission-config.sh"]
    assert {"name": "downloads", "mountPath": "/downloads", "readOnly": True} in init["volumeMounts"]
    daemon, sidecar = pod["containers"]
    assert daemon["image"] == "ghcr.io/linuxserver/transmission:4.0.6"
    env = {e["name"]: e["value"] for e in daemon["env"]}
    assert env == {"PUID": "1000", "PGID": "1000", "TZ": "America/Los_Angeles"}
    assert daemon["livenessProbe"]["httpGet"] == {"path": "/transmission/web/", "port": 9091}
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["volumes"]}
    assert claims["downloads"] == "torrents-storage" and claims["config"] == "transmission-config"
    side = {e["name"]: e["value"] for e in sidecar["env"]}
    assert side["RELOCATE_FROM"] == "/Users/erichblume/transmission" and side["RELOCATE_TO"] == "/downloads/complete"
    for kept in ("transmission-downloads", "transmission-config", "transmission-namespace"):
        assert phase6.named(kept)["provider"].endswith("kubernetes-kept"), kept
    downloads = phase6.named("transmission-downloads")["inputs"]["spec"]
    assert downloads["volumeName"] == "torrents-nfs-pv" and downloads["storageClassName"] == ""


def test_no_role_no_token_no_cronjob_in_phase_6(phase6: Run) -> None:
    types = {r["type"] for r in phase6.resources}
    assert not {t for t in types if t.endswith(("/Role", "/RoleBinding", "/ServiceAccount", "/CronJob",
                                                "/ClusterRole", "/ClusterRoleBinding"))}
    for name in ("transmission-deployment", "kiwix-deployment"):
        assert phase6.named(name)["inputs"]["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    kiwix = phase6.named("kiwix-deployment")["inputs"]["spec"]["template"]["spec"]
    assert kiwix["volumes"][0] == {"name": "data", "nfs": {"server": "sifaka", "path": "/volume1/torrents",
                                                           "readOnly": True}}


def test_the_zim_list_is_the_homelabs_and_a_setting_extends_it(phase6: Run) -> None:
    assert ZIM_TORRENTS.read_text() == SHARED_LIST.read_text()
    listed = phase6.named("transmission-torrents")["inputs"]["data"]["torrents.txt"].splitlines()
    assert listed == list(torrent_list(SHARED_LIST.read_text())) and len(listed) == 43
    extra = "https://download.kiwix.org/zim/devdocs/devdocs_en_rust_2026-01.zim.torrent"
    assert _torrent_urls(json.dumps([extra])) == (extra,)
    for bad in ("http://x/y.torrent", "https://x/y.torrent; rm -rf /", "https://x/y.zim"):
        with pytest.raises(s.InvalidValueError, match=r"is not the https URL of a \.torrent file"):
            _torrent_urls(json.dumps([bad]))


def test_at_6_the_stack_plan_passes_the_pack_and_holds_every_phase(indri_plan: PlanOf) -> None:
    plan = indri_plan("6")
    report = offline_plan.check_policy(plan)
    assert report.ok, [f"{v.policy}: {v.message}" for v in report.mandatory]
    names = {r["name"] for r in plan.resources}
    assert {"torrents-share-probe", "transmission-deployment", "kiwix-ingress"} <= names


def test_ops_diff_6_to_5_1_exits_0_and_lists_what_stays(indri_plan: PlanOf, tmp_path: Path) -> None:
    paths = []
    for target in ("6", "5.1"):
        path = tmp_path / f"plan-{target}.json"
        path.write_text(json.dumps(indri_plan(target).document))
        paths.append(path)
    result = subprocess.run([sys.executable, "-m", "ops", "diff", str(paths[0]), str(paths[1])], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    for kept in ("transmission-downloads", "transmission-config", "transmission-namespace"):
        assert kept in result.stdout
