"""The blumeops pack's contents: its name, description and every policy, in the order they run.

`policy/__main__.py` serves them (`PolicyPack`); `ops bench` builds the same servicer in-process to time
what the pack itself spends on a request, apart from gRPC.
"""

from __future__ import annotations

from rules import cluster, images, launch_agents, remote_commands, secrets

NAME = "blumeops"
DESCRIPTION = ("Guards for the blumeops homelab: arm64 images, absolute LaunchAgent paths and no shell strings, "
               "protected state, Tailscale-only exposure, NFS to the NAS, pinned SSH host keys, constant command "
               "strings, no plaintext secrets.")
POLICIES = [
    *images.POLICIES,
    *launch_agents.POLICIES,
    *cluster.POLICIES,
    *remote_commands.POLICIES,
    *secrets.POLICIES,
]
