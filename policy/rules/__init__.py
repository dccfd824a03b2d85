"""The blumeops policy rules.

Each module holds one family of rules as `ResourceValidationPolicy` objects; `policy/__main__.py`
only collects them into the `blumeops` pack. Nothing here imports the Pulumi program: a rule judges
a resource by its type token and its properties, exactly as the engine hands them over (secrets
already unwrapped, unknown values raising `UnknownValueError` when touched).
"""
