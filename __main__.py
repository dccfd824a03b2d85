"""The blumeops program: validate the stack's settings, deploy every phase up to the target, export a summary."""

import pulumi

import phases
from phases import settings as stack_settings

try:
    config = phases.load_settings()
    handover = phases.deploy(config)
except (stack_settings.SettingsError, phases.PhaseError) as err:
    # One readable message, no traceback: every problem with the key and the command that fixes it.
    raise pulumi.RunError(str(err)) from None

for key, value in phases.summary(handover).items():
    pulumi.export(key, value)
