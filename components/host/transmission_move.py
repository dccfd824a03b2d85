"""TransmissionMove: the brew Transmission's downloads and settings carried onto the NAS export, from the host,
once the daemon is stopped: the "with data" middle of the Transmission cutover (phase 6).

Why a host step with rsync, not a Job in the cluster: the ~138 GB live on the host's disk, which no pod sees
(the minikube node is a container of Docker Desktop's VM); the host mounts the export itself (as the homelab did
in its own migration, facts §9.4), and rsync is resumable and compares by name and size, which is what the copy
is verified by. The settings are small and travel on the same share (``.blumeops/transmission-config``), from
where the cluster's init container copies them into the empty ``/config`` claim: no image, no registry, no
``kubectl`` from the host.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.host.connection import Host
from components.host.script import HostStep, require_absolute

TRANSMISSION_MOVE_TYPE = "blumeops:host:TransmissionMove"
# Where the cluster's Transmission finds the carried settings: the share's root is its /downloads.
CARRIED_DIR = ".blumeops/transmission-config"
# The settings that say how the daemon behaves and are the owner's choices (facts §9.2: the upload limit,
# DHT/PEX). Never carried: the RPC's address, whitelists and credentials (the cluster's are the image's), the
# peer port (the container's), and paths (the cluster's are /downloads/complete and /downloads/incomplete).
CARRIED_KEYS = (
    "alt-speed-down", "alt-speed-enabled", "alt-speed-time-begin", "alt-speed-time-day", "alt-speed-time-enabled",
    "alt-speed-time-end", "alt-speed-up", "blocklist-enabled", "blocklist-url", "cache-size-mb", "dht-enabled",
    "download-queue-enabled", "download-queue-size", "encryption", "idle-seeding-limit",
    "idle-seeding-limit-enabled", "incomplete-dir-enabled", "lpd-enabled", "peer-limit-global",
    "peer-limit-per-torrent", "pex-enabled", "port-forwarding-enabled", "preallocation", "prefetch-enabled",
    "queue-stalled-enabled", "queue-stalled-minutes", "ratio-limit", "ratio-limit-enabled", "rename-partial-files",
    "scrape-paused-torrents-enabled", "seed-queue-enabled", "seed-queue-size", "speed-limit-down",
    "speed-limit-down-enabled", "speed-limit-up", "speed-limit-up-enabled", "start-added-torrents",
    "trash-original-torrent-files", "upload-slots-per-torrent", "utp-enabled",
)
COPY_ATTEMPTS = 3
# Pulumi's bound: a first copy of ~138 GB over gigabit NFS takes about 20-40 minutes; rsync's own calls are
# bounded by lib.sh's LONG (30 min) each, per pair and per dry run.
MOVE_TIMEOUT_MINUTES = 240



@dataclass(frozen=True, slots=True)
class TransmissionMoveArgs:
    host: Host
    source_dir: str  # the brew daemon's download-dir (~/transmission, as an absolute path); only read
    config_dir: str  # its config directory (/opt/homebrew/var/transmission); only read
    mount_point: str  # where the host mounts the export (/Volumes/torrents)
    export: str  # the export as mounted: sifaka:/volume1/torrents
    incomplete_name: str = ".incomplete"  # the daemon's incomplete-dir, inside source_dir
    rpc_url: str = "http://127.0.0.1:9091/transmission/rpc"  # where the brew daemon answers while it runs
    state_dir: str = ""  # default <home>/.local/state/blumeops/transmission-move

    def __post_init__(self) -> None:
        if not self.state_dir:
            object.__setattr__(self, "state_dir", f"{self.host.home}/.local/state/blumeops/transmission-move")
        for label in ("source_dir", "config_dir", "mount_point", "state_dir"):
            require_absolute("TransmissionMove", label, getattr(self, label))
        server, _, path = self.export.partition(":")
        if not server or not path.startswith("/"):
            raise ValueError(f"TransmissionMove: export {self.export!r} is not <server>:/<path>")
        for label, inner in (("mount_point", self.mount_point), ("state_dir", self.state_dir)):
            if f"{inner}/".startswith(f"{self.source_dir}/") or f"{self.source_dir}/".startswith(f"{inner}/"):
                raise ValueError(f"TransmissionMove: {label} {inner!r} and source_dir {self.source_dir!r} must not "
                                 "contain one another (the source is only read)")
        if "/" in self.incomplete_name or not self.incomplete_name.strip("."):
            raise ValueError(f"TransmissionMove: incomplete_name {self.incomplete_name!r} must be a directory name")
        if not self.rpc_url.startswith(("http://127.0.0.1:", "http://localhost:")):
            raise ValueError(f"TransmissionMove: rpc_url {self.rpc_url!r} must be the daemon's loopback RPC")

    def step(self, name: str) -> HostStep:
        tools = self.host.tools
        return HostStep(
            name, "transmission-move",
            {
                "SOURCE_DIR": self.source_dir,
                "INCOMPLETE_NAME": self.incomplete_name,
                "CONFIG_DIR": self.config_dir,
                "MOUNT_POINT": self.mount_point,
                "EXPORT": self.export,
                "STATE_DIR": self.state_dir,
                "RPC_URL": self.rpc_url,
                "RSYNC": tools.rsync,
                "MOUNT": tools.mount,
                "CURL": tools.curl,
                "JQ": tools.jq,
                "COPY_ATTEMPTS": COPY_ATTEMPTS,
                "CARRIED_KEYS": " ".join(CARRIED_KEYS),
            },
            does=(f"copies {self.source_dir} into {self.mount_point}/complete (and {self.incomplete_name} into "
                  f"incomplete) on {self.export}, resumable, verified by name and size, refusing to overwrite a "
                  f"file it did not write; stages the settings of {self.config_dir} at {self.mount_point}/"
                  f"{CARRIED_DIR}; the host's files are only read"),
            undoes=(f"removes the staged settings; the copied downloads stay on {self.export}, and "
                    f"{self.source_dir} and {self.config_dir} were never changed"),
        )


class TransmissionMove(pulumi.ComponentResource):
    """Carries the brew Transmission to the share: one host step, ``<name>-copy``, after the daemon's
    retirement (it refuses while the RPC answers, and unless the export is mounted at ``mount_point``).

    On the share it puts: the downloads under ``complete/`` and ``incomplete/`` (a second run copies nothing),
    and the carried settings under ``.blumeops/transmission-config``; on the host, ``state_dir`` with the list of
    files it wrote (so it never mistakes its own copy for a conflict) and the verification record.

    Undo: the delete removes the staged settings only. The downloads stay on the NAS (they are the data of the
    cluster's Transmission, and the NAS keeps them whatever the cluster does); the host's download and config
    directories were never written, so the restored brew Transmission finds them as they were.
    """

    def __init__(self, name: str, args: TransmissionMoveArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TRANSMISSION_MOVE_TYPE, name, {
            "sourceDir": args.source_dir, "configDir": args.config_dir, "export": args.export,
            "mountPoint": args.mount_point, "onRollback": "the copied downloads stay on the NAS; the host's files "
                                                          "were only read"}, opts)
        self.copy = args.step(f"{name}-copy").register(
            args.host, identity=(args.source_dir, args.config_dir, args.export, args.state_dir),
            timeout_minutes=MOVE_TIMEOUT_MINUTES, opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})
