"""Phase 6, Kiwix and Transmission: the brew Transmission's downloads and settings moved onto sifaka's export,
Transmission at ``torrent`` and Kiwix at ``kiwix`` in the cluster on that share, the declared ZIM torrents
kept in Transmission, and the host's Transmission, kiwix-serve agent and ``svc:kiwix`` retired.

Takes indri, the cluster's providers (phase 0), the ProxyClass (phase 1) and the share with its probe (phase
5.1). One ``pulumi up`` from 5.1 to 6 runs:

1. Transmission staged: namespace ``torrent``, the claims ``torrents-storage`` (bound to ``torrents-nfs-pv``)
   and ``transmission-config`` (both kept by a rollback), the ConfigMaps, the Service;
2. brew ``transmission-cli`` stopped (it had no tailnet name: nothing to release);
3. the move (``TransmissionMove``): from indri, which mounts the export, the downloads into ``complete/`` and
   ``incomplete/`` and the settings onto the share; verified; the host's files only read;
4. the Deployment ``transmission``, ready (its init container takes the carried settings into ``/config``), then
   the Ingress ``torrent``;
5. Kiwix, after the move put the ZIMs in ``complete/``: the Deployment ready, then the LaunchAgent
   ``mcquack.eblume.kiwix-serve`` stopped and ``svc:kiwix``'s serve entry cleared, ``svc:kiwix`` released, the
   Ingress ``kiwix`` (tagged ``tag:kiwix``, so members' grants reach it).

The NAS's files are never removed by anything here. Lowering the target to 5.1 undoes it in reverse: the
Ingresses go, ``svc:kiwix`` is recreated and the host's kiwix-serve serves it again, the Deployments go, the
staged settings are removed from the share, the brew Transmission restarts on its own untouched downloads and
config. The namespaces (``torrent``), both claims and every file on the NAS stay. What the cluster's Transmission
downloaded in between stays on the NAS and is not carried back (docs/operating.md, "Known limits").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pulumi

from components.apps.base import LegacyClaim
from components.apps.media import Kiwix, KiwixArgs, Transmission, TransmissionArgs
from components.host import (
    BrewService,
    LegacyLaunchAgent,
    LegacyServiceRetirementArgs,
    TransmissionMove,
    TransmissionMoveArgs,
)
from phases import Handover, Phase
from phases import settings as s
from phases.p0_foundation import INDRI, KEPT_STATE, KUBERNETES, TAILNET_POLICY, legacy_name_claim, proxy_tag_part
from phases.p1_kubernetes import PROXY_CLASS
from phases.p5_1_docker_driver import TORRENTS_SHARE, NfsSettings
from phases.parsers import copied_dir
from phases.settings import HOME

# The homelab's declared ZIM torrents (a copy of its list: tests/phases/test_phase6_media.py checks it against
# ../shared/data/kiwix-zim-torrents.txt); blumeops:transmission.extraTorrents adds to it.
ZIM_TORRENTS = Path(__file__).resolve().parent / "data" / "kiwix-zim-torrents.txt"


def torrent_list(text: str) -> tuple[str, ...]:
    """The URLs of a torrent list: one per line, blank lines and ``#`` comments ignored."""
    return tuple(line.split(" #", 1)[0].strip() for line in text.splitlines()
                 if line.strip() and not line.lstrip().startswith("#"))


def _torrent_urls(raw: object) -> tuple[str, ...]:
    """https URLs of .torrent files, as a JSON list."""
    found = []
    for item in s.json_list(raw):
        url = str(item)
        if not url.startswith("https://") or not url.endswith(".torrent") or any(c.isspace() for c in url) \
                or len(url) > 2048:
            raise s.InvalidValueError(f"{url!r} is not the https URL of a .torrent file "
                                      "(https://download.kiwix.org/zim/<category>/<file>.zim.torrent)")
        found.append(url)
    return tuple(found)


@s.section("transmission")
class TransmissionSettings:
    """Transmission in the cluster, and the brew transmission-cli on indri it replaces."""

    hostname: str = s.setting(s.dns_label, "Transmission's tailnet hostname", default="torrent")
    config_size: str = s.setting(s.storage_quantity, "the /config claim (kept by a rollback)", default="1Gi",
                                 example="1Gi")
    legacy_formula: str = s.setting(s.text, "the Homebrew formula of the daemon indri runs",
                                    default="transmission-cli")
    legacy_downloads: str = s.setting(copied_dir, "the brew daemon's download-dir (copied, never changed)",
                                      default=f"{HOME}/transmission")
    legacy_config: str = s.setting(copied_dir, "the brew daemon's config directory (read, never changed)",
                                   default="/opt/homebrew/var/transmission")
    share_mount: str = s.setting(s.absolute_path, "where indri mounts the NAS export for the move",
                                 default="/Volumes/torrents")
    extra_torrents: tuple[str, ...] = s.setting(
        _torrent_urls, "torrents to keep beside the homelab's ZIM list (https URLs of .torrent files)", default=(),
        example="'[\"https://download.kiwix.org/zim/devdocs/devdocs_en_rust_2026-01.zim.torrent\"]'")


@s.section("kiwix")
class KiwixSettings:
    """Kiwix in the cluster, and the kiwix-serve LaunchAgent on indri it replaces."""

    hostname: str = s.setting(s.dns_label, "Kiwix's tailnet hostname", default="kiwix")
    legacy_agent: str = s.setting(s.text, "the LaunchAgent label of the kiwix-serve indri runs",
                                  default="mcquack.eblume.kiwix-serve")
    legacy_service: str = s.setting(s.tailscale_service, "the Tailscale Service that holds the name before",
                                    default="svc:kiwix")


SETTINGS = (TransmissionSettings, KiwixSettings)

# kiwix's proxy carries tag:kiwix, members' grant reaches it (torrent had no tailnet name: no grant)
AMENDS = (TAILNET_POLICY.extend((proxy_tag_part(
    "P6", "tag:kiwix", {"src": ["autogroup:member"], "dst": ["tag:kiwix"], "ip": ["tcp:443"]},
    tests=({"src": "<member-user>", "accept": ["tag:kiwix:443"]},)),)),)


def build(phase: Phase, handover: Handover) -> None:
    host = handover.take(INDRI)
    tailnet = handover.settings.tailnet
    share = handover.take(TORRENTS_SHARE)
    nfs = handover.section(NfsSettings)
    transmission = handover.section(TransmissionSettings)
    kiwix = handover.section(KiwixSettings)
    provider, kept, proxy_class = handover.take(KUBERNETES), handover.take(KEPT_STATE), handover.take(PROXY_CLASS)
    moved: list[pulumi.Resource] = []

    def data_move(stopped: Sequence[pulumi.Resource]) -> Sequence[pulumi.Resource]:
        move = TransmissionMove(
            "transmission-move",
            TransmissionMoveArgs(host=host, source_dir=transmission.legacy_downloads,
                                 config_dir=transmission.legacy_config, mount_point=transmission.share_mount,
                                 export=f"{nfs.server}:{nfs.path}"),
            pulumi.ResourceOptions(parent=phase, depends_on=list(stopped)))
        moved.append(move.copy)
        return [move.copy]

    listed = torrent_list(ZIM_TORRENTS.read_text(encoding="utf-8"))
    torrents = (*listed, *(url for url in transmission.extra_torrents if url not in listed))
    torrent = Transmission(
        "transmission",
        TransmissionArgs(
            provider=provider, kept=kept, proxy_class=proxy_class, volume_name=share.volume_name,
            share_ready=(share.probe,), capacity=nfs.capacity, config_size=transmission.config_size,
            hostname=transmission.hostname, torrents=torrents, carried_from=transmission.legacy_downloads,
            legacy=LegacyClaim(retirement=LegacyServiceRetirementArgs(
                host=host, service=BrewService(transmission.legacy_formula, host.tools.brew), serve_service=None)),
            data_move=data_move,
        ),
        pulumi.ResourceOptions(parent=phase),
    )
    Kiwix(
        "kiwix",
        KiwixArgs(
            provider=provider, kept=kept, proxy_class=proxy_class, nfs_server=nfs.server, nfs_path=nfs.path,
            # the ZIMs are in complete/ once the move ran
            share_ready=(share.probe, *moved), hostname=kiwix.hostname,
            legacy=legacy_name_claim(handover, LegacyLaunchAgent(kiwix.legacy_agent), kiwix.legacy_service),
        ),
        pulumi.ResourceOptions(parent=phase),
    )
    assert torrent.ingress.cutover is not None and torrent.ingress.cutover.retirement is not None
    handover.retired[transmission.legacy_formula] = torrent.ingress.cutover.retirement.retire
    handover.endpoints["transmission"] = f"https://{transmission.hostname}.{tailnet.name}/transmission/web/"
    handover.endpoints["kiwix"] = f"https://{kiwix.hostname}.{tailnet.name}/"
