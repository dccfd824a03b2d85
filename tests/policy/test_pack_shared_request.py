"""The served pack converts each request once and shares it (rules/wire.py): the verdicts must be exactly what
pulumi_policy's own per-policy conversion gives, resource by resource, and the shortcuts must not open a way
past a rule (a CRD's schema is skipped but its defaults are judged)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2
from pulumi_policy import ResourceValidationArgs
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy
from rules import pack, wire
from rules.images import arm64_images

from ops import bench
from ops import plan as offline_plan
from ops.engine import analyzer

PlanOf = Callable[[str | None], offline_plan.Plan]
SENTINELS = (UNKNOWN_STRING_VALUE, UNKNOWN_NUMBER_VALUE)


def _random_tree(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth == 0 or roll < 0.3:
        return rng.choice(["x", 1.0, True, None, *SENTINELS, "img:1"])
    if roll < 0.65:
        return {rng.choice("abcdeImage"): _random_tree(rng, depth - 1) for _ in range(rng.randint(0, 4))}
    return [_random_tree(rng, depth - 1) for _ in range(rng.randint(0, 4))]


def _read_all(value: Any, path: tuple[Any, ...] = ()) -> list[Any]:
    """Everything a rule could read from a proxy, in order: values, or the UnknownValueError's sentinel and path."""
    seen: list[Any] = []
    if hasattr(value, "keys"):
        for key in value:
            try:
                child = value[key]
            except UnknownValueError as exc:
                seen.append(("unknown", (*path, key), exc.unknown_type_sentinel, exc.props, exc.message))
                continue
            seen.append(("key", (*path, key)))
            seen.extend(_read_all(child, (*path, key)))
    elif isinstance(value, (list, tuple)) or (hasattr(value, "__len__") and hasattr(value, "__getitem__")
                                             and not isinstance(value, str)):
        for index in range(-len(value), len(value)):
            try:
                item = value[index]
            except UnknownValueError as exc:
                seen.append(("unknown", (*path, index), exc.unknown_type_sentinel, exc.props, exc.message))
                continue
            if index >= 0:
                seen.extend(_read_all(item, (*path, index)))
        seen.append(("slice", len(value[1:])))
    else:
        seen.append(("value", path, value))
    return seen


def test_the_lazy_proxy_reads_as_pulumi_policys_own() -> None:
    rng = random.Random(20261201)
    for _ in range(300):
        tree = {"root": _random_tree(rng, 6), "other": _random_tree(rng, 3)}
        assert _read_all(wire.lazy_unknown_checking_proxy(tree)) == _read_all(unknown_checking_proxy(tree))


def test_struct_to_dict_is_message_to_dict(indri_plan: PlanOf) -> None:
    plan = indri_plan("3")
    assert plan.run is not None
    for resource in offline_plan.analyzer_resources(plan.run):
        request = analyzer.analyze_request(resource)
        assert wire.struct_to_dict(request.properties) == json_format.MessageToDict(request.properties), resource.urn
    odd = struct_pb2.Struct()
    odd.update({"n": 1, "f": 1.5, "b": False, "z": None, "l": [[], {}, [None, True]], "e": {}})
    assert wire.struct_to_dict(odd) == json_format.MessageToDict(odd)
    infinite = struct_pb2.Struct()
    infinite.update({"x": float("inf")})
    with pytest.raises(ValueError):
        json_format.MessageToDict(infinite)
    with pytest.raises(ValueError):
        wire.struct_to_dict(infinite)


def _direct_verdicts(servicer: Any, resource: analyzer.AnalyzerResource, request: Any) -> list[tuple[str, str]]:
    """Every policy run as pulumi_policy 1.21 runs it: its own conversion and eager proxy, per policy (options
    and provider read by pulumi_policy's own servicer methods)."""
    found: list[tuple[str, str]] = []
    options = servicer._get_resource_options(request)
    provider = servicer._get_provider_resource(request)
    for policy in pack.POLICIES:
        props = unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(request.properties)))
        args = ResourceValidationArgs(resource.type, props, resource.urn, resource.name, options, provider, None)
        with wire.request_properties(json_format.MessageToDict(request.properties)):
            try:
                policy.validate(args, lambda message, urn=None, name=policy.name: found.append((name, message)))
            except UnknownValueError as exc:
                found.append((policy.name, f"unknown: {exc.message}"))
    return sorted(found)


@pytest.mark.slow  # every policy twice over every resource of the plan: 8 s, make test runs it
def test_the_servicer_gives_every_resource_the_verdicts_of_the_per_policy_path(indri_plan: PlanOf) -> None:
    plan = indri_plan("3")
    assert plan.run is not None
    servicer = bench.pack_servicer()
    resources = [*offline_plan.analyzer_resources(plan.run), bench.synthetic_resource(100_000)]
    for resource in resources:
        request = analyzer.analyze_request(resource)
        response = servicer.Analyze(request, None)
        served = sorted((d.policyName, d.message.removeprefix(d.description + "\n")) for d in response.diagnostics)
        prefix = "can't run policy '{}' from policy pack 'blumeops@v0.0.1' during preview: "
        direct = [(name, prefix.format(name) + message.removeprefix("unknown: ") if message.startswith("unknown: ")
                   else message) for name, message in _direct_verdicts(servicer, resource, request)]
        assert served == sorted(direct), resource.urn
    assert len(resources) > 150


CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"


def _crd(default: Any) -> dict[str, Any]:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "image": {"type": "string", **({"default": default} if default is not None else {})},
        "replicas": {"type": "integer", "default": 1}}}}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"}, "scope": "Namespaced",
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": schema}}]}}


@pytest.mark.parametrize("served", [False, True])
def test_a_crd_schema_is_not_walked_but_its_defaults_are_judged(check: Any, catalog: Any, served: bool) -> None:
    """A default the API server writes into every Widget is an image like any other."""
    def violations(props: dict[str, Any]) -> list[str]:
        if not served:
            return check(arm64_images, CRD, props)
        servicer = bench.pack_servicer()
        resource = analyzer.AnalyzerResource(urn=f"urn:pulumi:indri::blumeops::{CRD}::widgets", type=CRD,
                                             name="widgets", properties=props)
        response = servicer.Analyze(analyzer.analyze_request(resource), None)
        return [d.message for d in response.diagnostics if d.policyName == "arm64-images"]

    assert violations(_crd(None)) == []
    flagged = violations(_crd("docker.io/example/amd64only:1.0"))
    assert flagged and any("amd64only" in message for message in flagged)
    assert violations(_crd("ghcr.io/miniflux/miniflux:2.2.16")) == []
    if served:
        # the served pack reads the schema in its wire form (not deserialized whole): a default sent as a
        # secret is opened where it stands, and judged like any other
        hidden = {wire.SIG_KEY: wire.SECRET_SIG, "value": "docker.io/example/amd64only:1.0"}
        flagged = violations(_crd(hidden))
        assert flagged and any("amd64only" in message for message in flagged)


def test_an_unknown_kind_is_still_walked_whole(check: Any, catalog: Any) -> None:
    """Only a CRD's schema is skipped: the same key in a custom resource of an unknown kind is read."""
    hidden = {"spec": {"openAPIV3Schema": {"template": {"spec": {"containers": [
        {"name": "x", "image": "docker.io/example/amd64only:1.0"}]}}}}}
    [message] = check(arm64_images, "kubernetes:example.com/v1:Widget", hidden)
    assert "amd64only" in message
