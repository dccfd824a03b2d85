"""The blumeops policy pack. Only assembles the pack; the rules live in `rules/`.

The engine starts it as `python -m pulumi.policy <engine-address> policy`, which runs this file with
`policy/` as sys.path[0], hence `from rules import ...`.
"""

import gc

from pulumi_policy import PolicyPack
from rules import pack, wire

# Before the pack is served: keep each request's wire form so rules can see which inputs are secret, and
# convert each request once for every policy (rules/wire.py).
wire.install()
# What is loaded by now (the SDKs, the rules, their compiled patterns) lives as long as the pack: out of the
# collector's sight, so a collection during an Analyze call scans only what the call made.
gc.freeze()

PolicyPack(name=pack.NAME, description=pack.DESCRIPTION, policies=pack.POLICIES)
