"""`no-plaintext-secrets`: secret values stay out of command strings and plain Kubernetes literals.

What the engine lets a pack see: it unwraps secret markers before a rule runs, so a rule cannot tell
a value that came from `config.require_secret(...)` from one typed into the program. What can be
judged is where a secret-looking value sits:

- a remote/local command's `create`/`update`/`delete` string (pulumi-command prints these in errors
  and logs; secrets belong on stdin or in files) must not carry a password, private key, auth key
  or credentials in a URL;
- a ConfigMap (stored and shown in plain text) must not carry them either;
- a container env var whose name says it is a secret (`*PASSWORD*`, `*SECRET*`, `*TOKEN*`, ...)
  must come from `valueFrom.secretKeyRef`, not a literal `value`;
- a Secret's `stringData` must not hold a well-known default (`admin`, `changeme`, `postgres`, ...),
  and its `data` must be base64 (plain text there is a bug that also leaks in diffs).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from rules.props import describe, get, get_str, is_mapping, mapping_items
from rules.workloads import CONTAINER_LISTS, pod_spec

COMMAND_TYPES = frozenset({"command:remote:Command", "command:local:Command"})
COMMAND_FIELDS = ("create", "update", "delete")
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SECRET = "kubernetes:core/v1:Secret"

_NOT_A_LITERAL = r"""(?!["']?\$)(?!["']?<)"""  # `$VAR`, `"$(cat f)"` and `<placeholder>` are not literals
SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a PGPASSWORD= assignment", re.compile(r"\bPGPASSWORD=" + _NOT_A_LITERAL + r"\S", re.IGNORECASE)),
    ("a password= assignment", re.compile(r"\b(?:password|passwd|pwd)\s*=\s*" + _NOT_A_LITERAL + r"[^\s&;'\"]",
                                          re.IGNORECASE)),
    ("a --password argument", re.compile(r"--password(?:=|\s+)" + _NOT_A_LITERAL + r"[^\s-]", re.IGNORECASE)),
    ("a private key", re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")),
    ("a Tailscale key (tskey-...)", re.compile(r"\btskey-[A-Za-z0-9-]+")),
    ("a GitHub token", re.compile(r"\b(?:ghp|gho|ghs|github_pat)_[A-Za-z0-9_]{20,}")),
    ("credentials in a URL (scheme://user:password@)",
     re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:" + _NOT_A_LITERAL + r"[^/\s@]+@")),
)
SECRET_ENV_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIALS?)", re.IGNORECASE)
SECRET_ENV_EXEMPT_SUFFIXES = ("_FILE", "_PATH", "_DIR", "_NAME", "_KEY_REF", "_SECRET_NAME")
# Names that hold the *name* of a Secret, not a secret: tailscale-operator's chart sets OPERATOR_SECRET=operator
# (the Secret the operator keeps its state in).
SECRET_ENV_EXEMPT_NAMES = frozenset({"OPERATOR_SECRET"})
WELL_KNOWN_DEFAULTS = frozenset(
    {"admin", "changeme", "change-me", "password", "passw0rd", "postgres", "secret", "root", "test", "default",
     "123456"}
)


def secret_findings(text: str) -> list[str]:
    return [what for what, pattern in SECRET_PATTERNS if pattern.search(text)]


def command_problems(props: Any) -> Iterator[str]:
    for field_name in COMMAND_FIELDS:
        text = get_str(props, field_name)
        if text:
            for what in secret_findings(text):
                yield (
                    f"`{field_name}` contains {what}: the command string is shown in logs and error messages; "
                    "send secrets on stdin or in a 0600 file"
                )


def config_map_problems(props: Any) -> Iterator[str]:
    data = get(props, "data")
    if is_mapping(data):
        for key in data:
            value = get_str(data, key)
            if value:
                for what in secret_findings(value):
                    yield f"data.{key} contains {what}: put it in a Secret and reference it"


def env_problems(resource_type: str, props: Any) -> Iterator[str]:
    spec = pod_spec(resource_type, props)
    if spec is None:
        return
    for list_name in CONTAINER_LISTS:
        for container in mapping_items(get(spec, list_name)):
            container_name = get_str(container, "name") or "?"
            for env in mapping_items(get(container, "env")):
                name = get_str(env, "name") or ""
                if (not SECRET_ENV_NAME.search(name) or name.upper().endswith(SECRET_ENV_EXEMPT_SUFFIXES)
                        or name.upper() in SECRET_ENV_EXEMPT_NAMES):
                    continue
                value = get_str(env, "value")
                if value:
                    yield (
                        f"container '{container_name}' sets env {name} to a literal value: use "
                        "`valueFrom.secretKeyRef` so the secret lives in a Secret"
                    )


def secret_literal_problems(props: Any) -> Iterator[str]:
    string_data = get(props, "stringData")
    if is_mapping(string_data):
        for key in string_data:
            value = get_str(string_data, key)
            if value is not None and value.strip().lower() in WELL_KNOWN_DEFAULTS:
                yield f"stringData.{key} is the well-known default {value!r}: generate it or take it from stack secrets"
    data = get(props, "data")
    if is_mapping(data):
        for key in data:
            value = get_str(data, key)
            if value is None:
                continue
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                yield f"data.{key} is not base64: put plain text in `stringData` (and from a secret), not `data`"


def validate_no_plaintext_secrets(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    problems: list[str] = []
    if args.resource_type in COMMAND_TYPES:
        problems.extend(command_problems(args.props))
    elif args.resource_type == CONFIG_MAP:
        problems.extend(config_map_problems(args.props))
    elif args.resource_type == SECRET:
        problems.extend(secret_literal_problems(args.props))
    else:
        problems.extend(env_problems(args.resource_type, args.props))
    for problem in problems:
        report_violation(f"{describe(args.resource_type, args.name, args.props)}: {problem}.", None)


no_plaintext_secrets = ResourceValidationPolicy(
    name="no-plaintext-secrets",
    description=(
        "No secret values in command strings, ConfigMaps or literal env values; Secrets hold no well-known "
        "defaults and only base64 in `data`."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate_no_plaintext_secrets,
)

POLICIES = [no_plaintext_secrets]
