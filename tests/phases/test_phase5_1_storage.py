"""Phase 5.1 as the program builds it: sifaka's export as the shared PersistentVolume, and the probe Job that
proves a pod can mount and read it (and says what the NAS must allow when it cannot)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from phase_runner import Run, run_phase

from components.cluster.storage import PROBE_SCRIPT, NfsExport
from ops import plan as offline_plan
from ops.stack import ROOT

PlanOf = Callable[[str | None], offline_plan.Plan]


@pytest.fixture(scope="module")
def phase51() -> Run:
    return run_phase("5.1")


def test_the_volume_is_the_nas_export_and_keeps_its_data(phase51: Run) -> None:
    volume = phase51.named("torrents-share-volume")["inputs"]
    assert volume["metadata"]["name"] == "torrents-nfs-pv"
    assert volume["spec"] == {
        "capacity": {"storage": "1Ti"}, "accessModes": ["ReadWriteMany"],
        "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
        "nfs": {"server": "sifaka", "path": "/volume1/torrents"},
    }
    share = phase51.named("torrents-share")["inputs"]
    assert "the data stays on sifaka" in share["onRollback"]


def test_the_probe_mounts_read_only_lists_complete_and_explains_a_failure(phase51: Run) -> None:
    job = phase51.named("torrents-share-probe")
    assert job["urn"] and phase51.named("torrents-share-volume")["urn"] in job["options"]["dependsOn"]
    assert job["options"]["customTimeouts"]["create"] == "5m"
    pod = job["inputs"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["volumes"] == [{"name": "share", "nfs": {"server": "sifaka", "path": "/volume1/torrents",
                                                        "readOnly": True}}]
    (container,) = pod["containers"]
    assert container["image"] == "docker.io/library/busybox:1.38.0"
    assert container["volumeMounts"] == [{"name": "share", "mountPath": "/share", "readOnly": True}]
    assert container["command"] == ["/bin/sh", "-c", PROBE_SCRIPT]  # constant: no setting in it
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PROBE_DIRECTORY"] == "/share/complete" and env["EXPORT"] == "sifaka:/volume1/torrents/complete"
    assert "192.168.1.0/24" in env["EXPORT_RULE"] and "100.64.0.0/10" in env["EXPORT_RULE"]
    rule = job["inputs"]["metadata"]["annotations"]["blumeops/on-failure"]
    assert rule.startswith("the NAS must export /volume1/torrents over NFS to 192.168.1.0/24, 100.64.0.0/10")


def test_the_probe_script_really_lists_and_really_fails(tmp_path: Path) -> None:
    """The probe's own shell, run against a directory that holds complete/ and one that does not."""
    from components.cluster.storage import NfsShareArgs

    args = NfsShareArgs(provider=None, export=NfsExport("sifaka", "/volume1/torrents"),  # type: ignore[arg-type]
                        volume_name="v", allowed_networks=("192.168.1.0/24",))
    env = {**os.environ, **args.probe_environment(), "PROBE_DIRECTORY": str(tmp_path / "complete")}
    (tmp_path / "complete").mkdir()
    (tmp_path / "complete" / "a.zim").write_text("x")
    ok = subprocess.run(["/bin/sh", "-c", PROBE_SCRIPT], capture_output=True, text=True, check=False, env=env)
    assert ok.returncode == 0 and "sifaka:/volume1/torrents/complete is readable: 1 entries" in ok.stdout
    (tmp_path / "complete" / "a.zim").unlink()
    (tmp_path / "complete").rmdir()
    failed = subprocess.run(["/bin/sh", "-c", PROBE_SCRIPT], capture_output=True, text=True, check=False, env=env)
    assert failed.returncode == 1 and "the NAS must export /volume1/torrents over NFS" in failed.stderr


def test_the_allowed_networks_are_networks() -> None:
    from phases.p5_1_docker_driver import _networks
    from phases.settings import InvalidValueError

    assert _networks('["192.168.1.0/24"]') == ("192.168.1.0/24",)
    for bad in ('["192.168.1.0/24; rm -rf /"]', '["192.168.1.1/24"]', "[]"):
        with pytest.raises(InvalidValueError):
            _networks(bad)


@pytest.mark.parametrize(("server", "path"), [("sifaka;rm", "/volume1/t"), ("sifaka", "volume1"),
                                              ("sifaka", "/volume1/../etc")])
def test_a_bad_export_is_refused(server: str, path: str) -> None:
    with pytest.raises(ValueError, match="NFS"):
        NfsExport(server, path)


def test_ops_diff_5_1_to_5_exits_0(indri_plan: PlanOf, tmp_path: Path) -> None:
    five, five_one = tmp_path / "5.json", tmp_path / "5.1.json"
    five.write_text(json.dumps(indri_plan("5").document))
    five_one.write_text(json.dumps(indri_plan("5.1").document))
    back = subprocess.run([sys.executable, "-m", "ops", "diff", str(five_one), str(five)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert back.returncode == 0, back.stdout + back.stderr
    assert "torrents-share-volume" in back.stdout
