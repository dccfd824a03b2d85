"""What ``ops`` emulates of the Pulumi engine, so the program can be previewed and judged offline: the mock run
of the program (``harness``), the providers' expansion of Helm charts (``charts_render``, over Helm's own SDK in
``helm``), the analyzer protocol that serves the policy pack (``analyzer``), the engine's wire form of inputs
(``wire``) and its rules for deleting and creating across a change of target (``lifecycle``).

The commands (``ops plan``, ``diff``, ``runbook``, ``check``, ``review``, ``bench`` ...) live beside this
package in ``ops/`` and build on it; nothing here imports a command.
"""
