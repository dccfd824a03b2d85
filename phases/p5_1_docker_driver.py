"""Phase 5.1, docker driver and external storage: sifaka's NFS export as the shared PersistentVolume, and the
proof that a pod can mount it, before phase 6's workloads depend on it.

The cluster runs on the docker driver from phase 0 (the driver guard, which refuses or, when confirmed,
replaces a legacy podman/qemu2 profile, is phase 0's minikube step). Takes the cluster's provider (phase 0).
Gives ``TORRENTS_SHARE`` (the PersistentVolume phase 6's claim binds by name, and the probe its workloads
wait for).

Lowering the target to 5 removes the probe Job, its namespace and the PersistentVolume object; the files stay
on the NAS (reclaim Retain: Kubernetes never deletes an NFS export's data, and nothing here writes to it).
"""

from __future__ import annotations

import ipaddress

import pulumi

from components.cluster.storage import NfsExport, NfsShare, NfsShareArgs
from phases import Handover, Key, Phase
from phases import settings as s
from phases.p0_foundation import KUBERNETES


def _networks(raw: object) -> tuple[str, ...]:
    """IPv4/IPv6 networks in CIDR form (``192.168.1.0/24``)."""
    found = []
    for item in s.json_list(raw):
        try:
            found.append(str(ipaddress.ip_network(str(item), strict=True)))
        except ValueError as err:
            raise s.InvalidValueError(f"{item!r} is not a network in CIDR form like 192.168.1.0/24: {err}") from None
    if not found:
        raise s.InvalidValueError("needs at least one network")
    return tuple(found)


@s.section("nfs")
class NfsSettings:
    """The NAS export the torrents and the ZIM library live on."""

    server: str = s.setting(s.hostname, "the NFS server as the minikube node resolves it (the NAS)",
                            default="sifaka")
    path: str = s.setting(s.absolute_path, "the exported directory", default="/volume1/torrents")
    capacity: str = s.setting(s.storage_quantity, "the PersistentVolume's capacity", default="1Ti", example="1Ti")
    # Docker Desktop NATs the pods' traffic through indri's LAN address; tailnet clients come from CGNAT space.
    allowed_networks: tuple[str, ...] = s.setting(
        _networks, "networks the NAS's export must allow (said by the probe when it cannot mount)",
        default=("192.168.1.0/24", "100.64.0.0/10"), example="'[\"192.168.1.0/24\", \"100.64.0.0/10\"]'")


SETTINGS = (NfsSettings,)

TORRENTS_SHARE = Key("storage.torrents", NfsShare, "sifaka's torrents export: its PersistentVolume and probe")


def build(phase: Phase, handover: Handover) -> None:
    nfs = handover.section(NfsSettings)
    share = NfsShare(
        "torrents-share",
        NfsShareArgs(provider=handover.take(KUBERNETES), export=NfsExport(nfs.server, nfs.path),
                     volume_name="torrents-nfs-pv", allowed_networks=tuple(nfs.allowed_networks),
                     capacity=nfs.capacity),
        pulumi.ResourceOptions(parent=phase),
    )
    handover.give(TORRENTS_SHARE, share)
