"""Reads a stack's config the way the Pulumi CLI hands it to the program, for the offline plan.

Values in ``Pulumi.<stack>.yaml`` become the strings the engine passes (structured values as JSON).
Encrypted values (``secure: v1:...``) cannot be decrypted here: they become fake values, marked secret.
Settings the stack does not set yet but the target phase needs get, offline only, a fake value if they
are secrets and their documented stand-in if they are facts only the operator can supply; each such
substitution is reported, because the real ``pulumi up`` refuses until the operator sets them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import phases
from phases import settings as stack_settings

ROOT = Path(__file__).resolve().parent.parent


class StackError(Exception):
    """The stack or project file is missing or malformed."""


@dataclass(slots=True)
class StackConfig:
    project: str
    stack: str
    config: dict[str, str]
    secret_keys: list[str]
    fake_secrets: dict[str, str] = field(default_factory=dict)  # key -> fake value (must never show up)
    stand_ins: list[str] = field(default_factory=list)  # human notes on offline substitutions
    substituted: list[str] = field(default_factory=list)  # the keys those notes are about

    @property
    def target(self) -> str:
        return self.config.get(f"{stack_settings.NAMESPACE}:phase", "")


def fake_secret(key: str) -> str:
    """A deterministic fake for a secret setting: distinctive, so a leak into the plan is found."""
    return f"plan-fake-secret-{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def _as_engine_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, sort_keys=True)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML as the Pulumi CLI reads a stack file: a key written twice is an error, not "the last one wins"."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} is written twice (the CLI refuses the file; keep one)",
                key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def project_name(root: Path = ROOT) -> str:
    path = root / "Pulumi.yaml"
    try:
        project = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise StackError(f"cannot read {path}: {err}") from None
    if not isinstance(project, dict) or not isinstance(project.get("name"), str):
        raise StackError(f"{path} has no project name")
    return str(project["name"])


def load_stack(stack: str, phase: str | None = None, root: Path = ROOT,
               registry: Sequence[phases.PhaseSpec] = phases.REGISTRY) -> StackConfig:
    """The stack's config as the CLI hands it over, with offline fakes for what the target's chain needs
    (``registry``: the phases whose settings are declared: a test that swaps a phase passes its own)."""
    project = project_name(root)
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise StackError(f"no stack file {path.name}: the stacks here are "
                         f"{', '.join(sorted(p.name[7:-5] for p in root.glob('Pulumi.*.yaml'))) or 'none'}")
    try:
        document = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as err:
        raise StackError(f"{path.name} is not valid YAML: {err}") from None
    raw = document.get("config") or {}
    if not isinstance(raw, dict):
        raise StackError(f"{path.name}: `config:` must be a map")

    result = StackConfig(project=project, stack=stack, config={}, secret_keys=[])
    for key, value in raw.items():
        full_key = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            fake = fake_secret(full_key)
            result.config[full_key] = fake
            result.secret_keys.append(full_key)
            result.fake_secrets[full_key] = fake
            continue
        result.config[full_key] = _as_engine_string(value)
    if phase is not None:
        result.config[f"{stack_settings.NAMESPACE}:phase"] = phase

    try:  # the same parser the program uses, so the two never disagree on what the target is
        target: str | None = stack_settings.phase_id(result.config.get(f"{stack_settings.NAMESPACE}:phase"),
                                                     phases.phase_ids(registry))
    except stack_settings.InvalidValueError:
        target = None  # the program reports it, once
    if target is not None:
        prefix = f"{stack_settings.NAMESPACE}:"
        own = {key[len(prefix):]: value for key, value in result.config.items() if key.startswith(prefix)}
        for spec in stack_settings.required_keys(target, phases.declared_settings(registry),
                                                 phases.phase_ids(registry)):
            if spec.full_key in result.config or stack_settings.lifted(spec, own):
                continue
            if spec.secret:
                fake = fake_secret(spec.full_key)
                result.config[spec.full_key] = fake
                result.secret_keys.append(spec.full_key)
                result.fake_secrets[spec.full_key] = fake
                result.stand_ins.append(f"{spec.full_key}: fake secret (set it with {spec.fix()})")
                result.substituted.append(spec.full_key)
            elif spec.stand_in is not None:
                result.config[spec.full_key] = spec.stand_in
                result.stand_ins.append(f"{spec.full_key}: offline stand-in (set it with {spec.fix()})")
                result.substituted.append(spec.full_key)
    result.secret_keys.sort()
    return result
