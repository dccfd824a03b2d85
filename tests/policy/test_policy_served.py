"""The pack served over gRPC, started exactly as the engine starts it."""

from __future__ import annotations

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
SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}
EXPECTED_LEVELS = {
    "arm64-images": proto.MANDATORY,
    "images-verified": proto.ADVISORY,
    "images-from-mirrored-registries": proto.MANDATORY,
    "absolute-launchagent-paths": proto.MANDATORY,
    "launchagent-no-shell": proto.MANDATORY,
    "launchd-plists-from-launchagents": proto.MANDATORY,
    "protect-stateful-resources": proto.MANDATORY,
    "tailscale-only-exposure": proto.MANDATORY,
    "nfs-allowed-servers": proto.MANDATORY,
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
            protect: bool = False) -> list[Any]:
    struct = struct_pb2.Struct()
    json_format.ParseDict(props, struct)
    urn = f"urn:pulumi:indri::blumeops::{resource_type}::{name}"
    request = proto.AnalyzeRequest(type=resource_type, properties=struct, urn=urn, name=name,
                                   options=proto.AnalyzerResourceOptions(protect=protect))
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
