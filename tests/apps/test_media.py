"""Transmission and Kiwix as components (phase 6's building blocks), under the mock engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.apps.media import TransmissionArgs
from tests.apps.mock_run import MockRun, run


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> MockRun:
    return run(tmp_path_factory.mktemp("media"), "media")


def test_transmission_keeps_its_settings_and_binds_the_share_by_name(media: MockRun) -> None:
    downloads = media.named("transmission-downloads")
    assert downloads["inputs"]["spec"]["volumeName"] == "torrents-nfs-pv"
    assert downloads["inputs"]["spec"]["storageClassName"] == ""
    for name in ("transmission-downloads", "transmission-config", "transmission-namespace"):
        assert media.named(name)["options"]["retainOnDelete"], name  # a rollback keeps them
    assert media.depends_on(downloads, media.named("torrents-share-probe"))
    pod = media.named("transmission-deployment")["inputs"]["spec"]["template"]["spec"]
    container, torrents = pod["containers"]
    assert container["image"] == torrents["image"] == "ghcr.io/linuxserver/transmission:4.0.6"
    env = {e["name"]: e["value"] for e in torrents["env"]}
    assert env["TRANSMISSION_HOST"] == "127.0.0.1"  # the RPC on the pod's loopback, whitelisted by the image
    assert env["STATE_FILE"].startswith("/config/") and torrents["command"] == ["bash", "/scripts/zim-torrents.sh"]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/downloads", "/config"}
    assert {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]
            if "persistentVolumeClaim" in v} == {"downloads": "torrents-storage", "config": "transmission-config"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/transmission/web/", "port": 9091}
    assert pod["automountServiceAccountToken"] is False


def test_kiwix_serves_the_library_without_a_restart_and_holds_no_token(media: MockRun) -> None:
    pod = media.named("kiwix-deployment")["inputs"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    serve, library = pod["containers"]
    assert serve["command"] == ["kiwix-serve", "--port", "8080", "--library", "--monitorLibrary",
                                "/library/library.xml"]
    assert library["command"] == ["/bin/sh", "/scripts/kiwix-library.sh"]
    data = next(v for v in pod["volumes"] if v["name"] == "data")
    assert data["nfs"] == {"server": "sifaka", "path": "/volume1/torrents", "readOnly": True}
    assert all(m["readOnly"] for c in (serve, library) for m in c["volumeMounts"] if m["name"] == "data")
    (init,) = pod["initContainers"]
    assert init["command"][-1] == "once"
    scripts = media.named("kiwix-scripts")["inputs"]["data"]
    assert set(scripts) == {"kiwix-library.sh"} and scripts["kiwix-library.sh"].startswith("#!")
    assert not media.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
    assert not media.of_type("kubernetes:core/v1:ServiceAccount")
    assert not media.of_type("kubernetes:batch/v1:CronJob")


def test_the_declared_torrents_are_the_homelab_list(media: MockRun) -> None:
    listed = media.named("transmission-torrents")["inputs"]["data"]["torrents.txt"]
    assert listed == "https://download.kiwix.org/zim/devdocs/devdocs_en_bash_2026-01.zim.torrent\n"
    shared = (Path(__file__).resolve().parents[2].parent / "shared/data/kiwix-zim-torrents.txt").read_text()
    assert "devdocs_en_bash_2026-01.zim.torrent" in shared


def test_a_torrent_that_is_not_an_https_url_is_refused() -> None:
    with pytest.raises(ValueError, match="not https URLs"):
        TransmissionArgs(provider=None, kept=None, proxy_class=None, volume_name="v",  # type: ignore[arg-type]
                         share_ready=(), torrents=("http://x/y.torrent; rm -rf /",))
