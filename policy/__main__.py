"""The blumeops policy pack. Only assembles the pack; the rules live in `rules/`.

The engine starts it as `python -m pulumi.policy <engine-address> policy`, which runs this file with
`policy/` as sys.path[0], hence `from rules import ...`.
"""

from pulumi_policy import PolicyPack
from rules import cluster, images, launch_agents, remote_commands, secrets, wire

# Before the pack is served: keep each request's wire form so rules can see which inputs are secret.
wire.install()

PolicyPack(
    name="blumeops",
    description="Guards for the blumeops homelab: arm64 images, absolute LaunchAgent paths and no shell strings, "
    "protected state, Tailscale-only exposure, NFS to the NAS, pinned SSH host keys, constant command strings, "
    "no plaintext secrets.",
    policies=[
        *images.POLICIES,
        *launch_agents.POLICIES,
        *cluster.POLICIES,
        *remote_commands.POLICIES,
        *secrets.POLICIES,
    ],
)
