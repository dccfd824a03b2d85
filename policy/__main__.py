"""The blumeops policy pack. Only assembles the pack; the rules live in `rules/`.

The engine starts it as `python -m pulumi.policy <engine-address> policy`, which runs this file with
`policy/` as sys.path[0], hence `from rules import ...`.
"""

from pulumi_policy import PolicyPack
from rules import pack, wire

# Before the pack is served: keep each request's wire form so rules can see which inputs are secret, and
# convert each request once for every policy (rules/wire.py).
wire.install()

PolicyPack(name=pack.NAME, description=pack.DESCRIPTION, policies=pack.POLICIES)
