"""The pack served over gRPC, started exactly as the engine starts it."""

from __future__ import annotations

import base64
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime import proto
from pulumi.runtime.proto import analyzer_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270"
SECRET_SIG = {SIG_KEY: SECRET_SIG_VALUE}
EXPECTED_LEVELS = {
    "arm64-images": proto.MANDATORY,
    "images-verified": proto.ADVISORY,
    "images-from-mirrored-registries": proto.MANDATORY,
    "objects-visible-to-the-pack": proto.MANDATORY,
    "absolute-launchagent-paths": proto.MANDATORY,
    "launchagent-no-shell": proto.MANDATORY,
    "launchd-plists-from-launchagents": proto.MANDATORY,
    "protect-stateful-resources": proto.MANDATORY,
    "tailscale-only-exposure": proto.MANDATORY,
    "nfs-allowed-servers": proto.MANDATORY,
    "workload-security": proto.MANDATORY,
    "ssh-pinned-host-key": proto.MANDATORY,
    "constant-command-strings": proto.MANDATORY,
    "no-plaintext-secrets": proto.MANDATORY,
}


@pytest.fixture(scope="module")
def stub() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    process = subprocess.Popen([sys.executable, "-m", "pulumi.policy", "127.0.0.1:0", "policy"], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert process.stdout is not None
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(30)
    try:
        assert lines and lines[0].strip().isdigit(), f"the pack printed no port: {lines!r}"
        channel = grpc.insecure_channel(f"127.0.0.1:{int(lines[0])}")
        grpc.channel_ready_future(channel).result(timeout=30)
        analyzer = analyzer_pb2_grpc.AnalyzerStub(channel)
        analyzer.Configure(proto.ConfigureAnalyzerRequest(), timeout=30)
        yield analyzer
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def analyze(stub: analyzer_pb2_grpc.AnalyzerStub, resource_type: str, props: dict[str, Any], name: str = "r",
            protect: bool = False, parent: str | None = None) -> list[Any]:
    struct = struct_pb2.Struct()
    json_format.ParseDict(props, struct)
    chain = f"{parent}${resource_type}" if parent else resource_type
    urn = f"urn:pulumi:indri::blumeops::{chain}::{name}"
    parent_urn = f"urn:pulumi:indri::blumeops::{parent}::owner" if parent else ""
    request = proto.AnalyzeRequest(type=resource_type, properties=struct, urn=urn, name=name,
                                   options=proto.AnalyzerResourceOptions(protect=protect, parent=parent_urn))
    return list(stub.Analyze(request, timeout=30).diagnostics)


def test_analyzer_info_lists_rules_with_levels(stub: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    assert info.name == "blumeops"
    assert {p.name: p.enforcementLevel for p in info.policies} == EXPECTED_LEVELS
    assert all(p.description for p in info.policies)


def test_launch_agent_violations(stub: analyzer_pb2_grpc.AnalyzerStub) -> None:
    props = {"label": "mcquack.eblume.zot", "plistPath": "/Users/me/Library/LaunchAgents/mcquack.eblume.zot.plist",
             "programArguments": ["~/bin/zot", "serve"], "environmentVariables": {"PATH": "~/bin:/usr/bin"},
             "standardOutPath": "/Users/me/zot.log", "standardErrorPath": "/Users/me/zot.err",
             "runAtLoad": True, "keepAlive": True, "startInterval": 60}
    diagnostics = analyze(stub, "blumeops:host:LaunchAgent", props, name="zot")
    assert len(diagnostics) == 2
    assert {d.policyName for d in diagnostics} == {"absolute-launchagent-paths"}
    assert all(d.enforcementLevel == proto.MANDATORY for d in diagnostics)
    assert any("'~/bin/zot'" in d.message for d in diagnostics)


def test_image_violations_and_secret_wire_form(stub: analyzer_pb2_grpc.AnalyzerStub) -> None:
    props = {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "ghcr.io/miniflux/miniflux:latest",
                        "env": [{"name": "DATABASE_URL", "value": {**SECRET_SIG, "value": "postgres://u:p@db/x"}}]}],
        "initContainers": [{"name": "init", "image": "busybox"}],
        "nodeSelector": {"kubernetes.io/arch": "amd64"}}}}}
    diagnostics = analyze(stub, "kubernetes:apps/v1:Deployment", props, name="miniflux")
    mandatory = [d for d in diagnostics if d.enforcementLevel == proto.MANDATORY]
    # the secret mark is read off the wire; a literal env value still lands in the Deployment in plain text, and one
    # holding credentials in a URL is refused (issue 18), marked or not
    [url] = [d for d in mandatory if d.policyName == "no-plaintext-secrets"]
    assert "DATABASE_URL" in url.message and "credentials in a URL" in url.message
    mandatory = [d for d in mandatory if d.policyName != "no-plaintext-secrets"]
    assert {d.policyName for d in mandatory} == {"arm64-images"}
    assert len(mandatory) == 3
    text = "\n".join(d.message for d in mandatory)
    assert "`latest`" in text and "init container 'init'" in text and "kubernetes.io/arch=amd64" in text


def test_amd64_only_catalog_entry_fails_through_the_pack(stub: analyzer_pb2_grpc.AnalyzerStub) -> None:
    # Not in images.yaml -> mandatory; the message tells how to fix it.
    props = {"spec": {"containers": [{"name": "app", "image": "docker.io/library/nginx:1.27"}]}}
    [diagnostic] = [d for d in analyze(stub, "kubernetes:core/v1:Pod", props) if d.policyName == "arm64-images"]
    assert "python -m ops images verify" in diagnostic.message


def test_unknown_image_is_advisory_cant_run(stub: analyzer_pb2_grpc.AnalyzerStub) -> None:
    props = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": UNKNOWN}]}}}}
    diagnostics = analyze(stub, "kubernetes:apps/v1:Deployment", props)
    by_policy = {d.policyName: d for d in diagnostics}
    assert by_policy["arm64-images"].enforcementLevel == proto.ADVISORY
    assert "can't run policy 'arm64-images'" in by_policy["arm64-images"].message
    assert all(d.enforcementLevel == proto.ADVISORY for d in diagnostics)


def test_protect_option_and_clean_resource(stub: analyzer_pb2_grpc.AnalyzerStub) -> None:
    pvc = {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}
    [diagnostic] = analyze(stub, "kubernetes:core/v1:PersistentVolumeClaim", pvc)
    assert diagnostic.policyName == "protect-stateful-resources"
    assert analyze(stub, "kubernetes:core/v1:PersistentVolumeClaim", pvc, protect=True) == []


# -- the classes of issue 9, a sample through the served pack -----------------------------------------------

CREATE = "/bin/bash -euo pipefail -s -- create"
DELETE = "/bin/bash -euo pipefail -s -- delete"
AMD64 = "docker.io/example/amd64only:1.0"
HOME = "/Users/erichblume"


def secret(value: Any) -> dict[str, Any]:
    return {**SECRET_SIG, "value": value}


def _host_key() -> str:
    blob = b"".join(len(part).to_bytes(4, "big") + part for part in (b"ssh-ed25519", bytes(32)))
    return "ssh-ed25519 " + base64.b64encode(blob).decode()


CONNECTION = secret({"host": "indri", "port": 22, "user": "erichblume", "hostKey": _host_key()})


def mandatory(diagnostics: list[Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for diagnostic in diagnostics:
        if diagnostic.enforcementLevel == proto.MANDATORY:
            found.setdefault(diagnostic.policyName, []).append(diagnostic.message)
    return found


SERVED_SAMPLE: list[tuple[str, dict[str, Any], str | None, set[str]]] = [
    ("kubernetes:apps/v1:DeploymentPatch",
     {"spec": {"template": {"spec": {"containers": [{"name": "a", "IMAGE": AMD64,
                                                     "ports": [{"containerPort": 80, "hostPort": 80}]}]}}}},
     None, {"arm64-images", "tailscale-only-exposure"}),
    ("kubernetes:postgresql.cnpg.io/v1:Pooler",
     {"spec": {"template": {"spec": {"containers": [{"name": "pgbouncer", "image": AMD64}]}}}}, None,
     {"arm64-images"}),
    ("kubernetes:tailscale.com/v1alpha1:Recorder",
     {"spec": {"statefulSet": {"pod": {"container": {"image": "registry.example.com/x/recorder:1"}}}}}, None,
     {"arm64-images", "images-from-mirrored-registries"}),
    ("kubernetes:argoproj.io/v1alpha1:Application",
     {"spec": {"source": {"helm": {"values": f"image: {AMD64}\nservice:\n  type: NodePort\n"}}}}, None,
     {"arm64-images", "tailscale-only-exposure"}),
    ("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute", {"spec": {"parentRefs": [{"name": "gw"}]}}, None,
     {"tailscale-only-exposure"}),
    ("kubernetes:storage.k8s.io/v1:StorageClass",
     {"provisioner": "nfs.csi.k8s.io", "parameters": {"server": "nas.example.com"}}, None, {"nfs-allowed-servers"}),
    ("command:remote:Command",
     {"connection": CONNECTION, "create": "/usr/bin/true; /usr/bin/touch pwned; -euo pipefail -s -- create",
      "delete": DELETE,
      "stdin": "readonly DB_PASSWORD='hunter2'\n"}, None, {"constant-command-strings", "no-plaintext-secrets"}),
    ("command:remote:Command",
     {"connection": CONNECTION, "create": CREATE, "delete": DELETE,
      "stdin": f"cp /tmp/x.plist {HOME}/Library/LaunchAgents/\n"},
     "blumeops:host:ZotRegistry", {"launchd-plists-from-launchagents"}),
    ("blumeops:host:LaunchAgent",
     {"label": "x", "programArguments": ["/usr/bin/env", "zsh", "-c", "zot serve --token abc123"]}, None,
     {"launchagent-no-shell", "absolute-launchagent-paths", "no-plaintext-secrets"}),
]


@pytest.mark.parametrize(("resource_type", "props", "parent", "policies"), SERVED_SAMPLE,
                         ids=[f"{t.rsplit(':', 1)[-1]}-{n}" for n, (t, _, _, _) in enumerate(SERVED_SAMPLE)])
def test_classes_are_caught_through_the_served_pack(stub: analyzer_pb2_grpc.AnalyzerStub, resource_type: str,
                                                    props: dict[str, Any], parent: str | None,
                                                    policies: set[str]) -> None:
    found = mandatory(analyze(stub, resource_type, props, name="sample", parent=parent))
    assert set(found) == policies, found


def test_the_served_pack_sees_which_inputs_are_secret(stub: analyzer_pb2_grpc.AnalyzerStub) -> None:
    """pulumi_policy drops the engine's secret marks; the pack keeps the wire form (rules/wire.py)."""
    plain = {"connection": CONNECTION, "create": CREATE, "delete": DELETE, "stdin": "readonly DB_PASSWORD='hunter2'\n",
             "environment": {"API_TOKEN": "abc123"}}
    found = mandatory(analyze(stub, "command:remote:Command", plain))
    assert len(found["no-plaintext-secrets"]) == 2, found
    marked = {**plain, "stdin": secret(plain["stdin"]), "environment": {"API_TOKEN": secret("abc123")}}
    assert mandatory(analyze(stub, "command:remote:Command", marked)) == {}


def test_the_launch_agent_install_step_is_served_as_its_child(stub: analyzer_pb2_grpc.AnalyzerStub) -> None:
    plist = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict><key>Label</key>"
             "<string>x</string><key>ProgramArguments</key><array><string>/bin/date</string></array></dict></plist>")
    props = {"connection": CONNECTION, "create": CREATE, "delete": DELETE,
             "stdin": f"readonly PLIST='{plist}'\nreadonly PLIST_PATH={HOME}/Library/LaunchAgents/x.plist\n"}
    assert mandatory(analyze(stub, "command:remote:Command", props, parent="blumeops:host:LaunchAgent")) == {}
    assert set(mandatory(analyze(stub, "command:remote:Command", props))) == {"launchd-plists-from-launchagents"}


# -- the program's own plan, at every implemented target ----------------------------------------------------

def _implemented_targets() -> list[str]:
    import phases

    return [spec.id for spec in phases.REGISTRY if spec.implemented]


@pytest.mark.parametrize("target", _implemented_targets())
def test_the_programs_plan_passes_at_every_implemented_target(indri_plan: Any, target: str) -> None:
    from ops import plan as offline_plan

    plan = indri_plan(target)
    report = offline_plan.check_policy(plan)
    assert report.resources_analyzed == len(plan.resources)
    assert report.mandatory == [], [f"{v.policy}: {v.message}" for v in report.mandatory]
    commands = [r for r in plan.resources if r["type"] in ("command:remote:Command", "command:local:Command")]
    assert commands, "every target runs host steps"
    for resource in commands:
        assert resource["inputs"]["create"] == CREATE, resource["name"]
        assert resource["inputs"].get("delete", DELETE) == DELETE, resource["name"]
        assert "update" not in resource["inputs"], resource["name"]


def test_the_programs_secret_stdin_passes_marked_and_fails_plain() -> None:
    """With a Docker Hub token set, zot's config step carries it on stdin, marked secret: the pack passes
    it, and the very same stdin unmarked is a violation."""
    import dataclasses

    from ops import plan as offline_plan
    from ops.engine import analyzer as served
    from ops.stack import fake_secret, load_stack

    stack = load_stack("indri", "0")
    for key, is_secret in (("blumeops:zot.dockerHubUser", False), ("blumeops:zot.dockerHubToken", True)):
        value = fake_secret(key) if is_secret else "blumeops"
        stack.config[key] = value
        if is_secret:
            stack.secret_keys.append(key)
            stack.fake_secrets[key] = value
    plan = offline_plan.build_plan(stack)
    assert offline_plan.check_policy(plan).mandatory == []
    assert plan.run is not None
    [step] = [r for r in offline_plan.analyzer_resources(plan.run) if r.name == "zot-config"]
    assert step.properties["stdin"][SIG_KEY] == SECRET_SIG_VALUE
    unmarked = dataclasses.replace(step, properties={**step.properties, "stdin": step.properties["stdin"]["value"]})
    report = served.analyze([unmarked])
    assert [v.policy for v in report.mandatory] == ["no-plaintext-secrets"], report.mandatory
    assert "`stdin`" in report.mandatory[0].message and "CREDENTIALS_JSON" in report.mandatory[0].message
