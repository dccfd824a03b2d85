"""The devpi image's build step on the fake machine: the stub Docker Desktop CLI (tests/host/toolbox/docker)
builds and saves a real OCI image layout, and the step pushes it with the real curl to the real
docker-registry (tests/servers/registry.py), which plays zot on the host's loopback."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from components.host.devpi_image import DEVPI_CONTEXT, DevpiImageArgs, content_tag, context_files
from tests.host.conftest import Machine
from tests.servers.registry import REGISTRY_BIN, PushedImages, RegistryServer, free_port

CURL, JQ = shutil.which("curl") or "/usr/bin/curl", shutil.which("jq") or "/usr/bin/jq"
SHASUM = shutil.which("shasum") or "/usr/bin/shasum"
MANIFEST_TYPES = "application/vnd.oci.image.manifest.v1+json"


def image_args(machine: Machine, registry: PushedImages, **changes: object) -> DevpiImageArgs:
    host = machine.host()
    host = dataclasses.replace(host, tools=dataclasses.replace(host.tools, curl=CURL, jq=JQ))
    values: dict[str, object] = {"host": host, "pull_registry": "registry.example.ts.net",
                                 "push_registry": registry.registry.host, "shasum": SHASUM,
                                 "tar": shutil.which("tar") or "/usr/bin/tar"}
    values.update(changes)
    return DevpiImageArgs(**values)  # type: ignore[arg-type]


def docker_calls(machine: Machine, since: int = 0) -> list[str]:
    return [call for call in machine.calls()[since:] if call.startswith("docker ")]


def manifest(registry: PushedImages, repository: str, tag: str) -> tuple[int, str]:
    request = urllib.request.Request(f"{registry.registry.base}/v2/{repository}/manifests/{tag}", method="HEAD",
                                     headers={"Accept": MANIFEST_TYPES})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Docker-Content-Digest", "")
    except urllib.error.HTTPError as error:
        return error.code, ""


def test_the_tag_is_a_content_hash_of_every_byte_and_name() -> None:
    files = context_files(DEVPI_CONTEXT)
    assert sorted(files) == ["Dockerfile", "build-requirements.txt", "entrypoint.sh", "requirements.txt"]
    tag = content_tag(files)
    assert len(tag) == 16 and tag == content_tag(dict(files)) == content_tag(context_files(DEVPI_CONTEXT))
    def flip(text: str) -> str:  # one bit of the middle byte
        middle = len(text) // 2
        return text[:middle] + chr(ord(text[middle]) ^ 1) + text[middle + 1:]

    changed = {name: content_tag({**files, name: flip(files[name])}) for name in files}
    changed["renamed"] = content_tag({**{k: v for k, v in files.items() if k != "entrypoint.sh"},
                                      "entrypoint.bash": files["entrypoint.sh"]})
    changed["newline"] = content_tag({**files, "Dockerfile": files["Dockerfile"] + "\n"})
    changed["moved byte"] = content_tag({**files, "Dockerfile": files["Dockerfile"][:-1],
                                         "entrypoint.sh": files["Dockerfile"][-1] + files["entrypoint.sh"]})
    assert tag not in changed.values() and len(set(changed.values())) == len(changed)


def test_the_image_reference_is_known_offline() -> None:
    args = DevpiImageArgs(host=None, pull_registry="registry.example.ts.net",  # type: ignore[arg-type]
                          push_registry="localhost:5050")
    assert args.image == f"registry.example.ts.net/blumeops/devpi:{args.tag}"
    assert args.push_ref == f"localhost:5050/blumeops/devpi:{args.tag}"
    dockerfile = args.files["Dockerfile"]
    assert "FROM python:3.12-slim@sha256:" in dockerfile and "USER 1000" in dockerfile
    assert "EXPOSE 3141" in dockerfile and "--require-hashes" in dockerfile
    with pytest.raises(ValueError, match="not a registry"):
        DevpiImageArgs(host=None, pull_registry="https://x/y", push_registry="localhost:5050")  # type: ignore[arg-type]


def test_build_pushes_once_and_an_unchanged_tag_builds_nothing(
        machine: Machine, plain_registry: PushedImages) -> None:
    args = image_args(machine, plain_registry)
    assert manifest(plain_registry, args.repository, args.tag)[0] == 404
    result = machine.run(args.step("devpi-image"))
    assert "pushed" in result.stderr
    calls = docker_calls(machine)
    assert [call.split()[1] for call in calls] == ["info", "buildx", "save"]
    assert "--platform linux/arm64" in calls[1] and f"--tag blumeops/devpi:{args.tag}" in calls[1]
    status, digest = manifest(plain_registry, args.repository, args.tag)
    assert status == 200 and digest.startswith("sha256:")
    # the manifest the registry holds is the saved image's, for arm64
    with urllib.request.urlopen(urllib.request.Request(
            f"{plain_registry.registry.base}/v2/{args.repository}/manifests/{args.tag}",
            headers={"Accept": MANIFEST_TYPES}), timeout=10) as response:
        document = json.load(response)
    with urllib.request.urlopen(f"{plain_registry.registry.base}/v2/{args.repository}/blobs/"
                                f"{document['config']['digest']}", timeout=10) as response:
        assert json.load(response)["architecture"] == "arm64"
    # a second run (and another machine, a fresh Docker Desktop): the registry has the tag, nothing is built
    since = len(machine.calls())
    result = machine.run(args.step("devpi-image"))
    assert "already in the registry" in result.stderr and docker_calls(machine, since) == []
    # nothing stays behind in the scratch directory
    assert list((machine.root / "tmp").iterdir()) == []


def test_a_changed_context_gets_a_new_tag_and_a_build(machine: Machine, plain_registry: PushedImages) -> None:
    base = image_args(machine, plain_registry, repository="blumeops/devpi-changed")
    machine.run(base.step("devpi-image"))
    files = dict(base.files)
    files["entrypoint.sh"] = files["entrypoint.sh"].replace("3141", "3141 ", 1)
    changed = dataclasses.replace(base, files=files)
    assert changed.tag != base.tag
    since = len(machine.calls())
    machine.run(changed.step("devpi-image"))
    assert [call.split()[1] for call in docker_calls(machine, since)] == ["info", "buildx", "save"]
    assert manifest(plain_registry, base.repository, changed.tag)[0] == 200
    assert manifest(plain_registry, base.repository, base.tag)[0] == 200  # the old tag stays for a rollback


def test_a_tag_that_does_not_match_the_written_context_is_refused(
        machine: Machine, plain_registry: PushedImages) -> None:
    args = image_args(machine, plain_registry, repository="blumeops/devpi-mismatch")
    step = args.step("devpi-image")
    variables = dict(step.variables)
    variables["IMAGE_TAG"] = "0123456789abcdef"
    result = machine.run(dataclasses.replace(step, variables=variables), check=False)
    assert result.returncode != 0 and "hashes to" in result.stderr and "nothing was built" in result.stderr
    assert docker_calls(machine) == []


@pytest.mark.parametrize(("fault", "message"), [
    ("docker-build-run", "`docker buildx build` of blumeops/devpi-fail-docker-build-run:"),
    ("docker-save", "`docker save blumeops/devpi-fail-docker-save:"),
])
def test_a_failed_build_or_save_fails_the_step_and_pushes_nothing(
        machine: Machine, plain_registry: PushedImages, fault: str, message: str) -> None:
    args = image_args(machine, plain_registry, repository=f"blumeops/devpi-fail-{fault}")
    machine.fail(fault)
    result = machine.run(args.step("devpi-image"), check=False)
    assert result.returncode != 0 and message in result.stderr and "nothing was pushed" in result.stderr
    if fault == "docker-build-run":
        assert "did not complete successfully" in result.stderr  # buildx's own message reaches the log
    assert manifest(plain_registry, args.repository, args.tag)[0] == 404
    machine.heal(fault)
    machine.run(args.step("devpi-image"))  # the next run builds and pushes
    assert manifest(plain_registry, args.repository, args.tag)[0] == 200


def test_a_failed_push_fails_the_step(machine: Machine, plain_registry: PushedImages, tmp_path: Path) -> None:
    # a registry that answers HEAD with 404 but refuses uploads: docker-registry in read-only mode
    config = plain_registry.registry.config().replace("storage:\n", "storage:\n  maintenance:\n    readonly:\n"
                                                      "      enabled: true\n", 1)
    readonly = RegistryServer(tmp_path)
    readonly.port = free_port()
    config = config.replace(f"127.0.0.1:{plain_registry.registry.port}", f"127.0.0.1:{readonly.port}")
    config = config.replace(str(plain_registry.registry.directory / "storage"), str(tmp_path / "storage"))
    (tmp_path / "config.yml").write_text(config)
    process = subprocess.Popen([str(REGISTRY_BIN), "serve", str(tmp_path / "config.yml")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{readonly.base}/v2/", timeout=1).close()
                break
            except OSError:
                subprocess.run(["sleep", "0.05"], check=False)
        args = image_args(machine, plain_registry, push_registry=readonly.host)
        result = machine.run(args.step("devpi-image"), check=False)
        assert result.returncode != 0 and "refused" in result.stderr and "(HTTP 405)" in result.stderr
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_docker_desktop_down_and_registry_down_stop_the_step(machine: Machine,
                                                             plain_registry: PushedImages) -> None:
    args = image_args(machine, plain_registry, repository="blumeops/devpi-down")
    (machine.state / "docker-down").touch()
    result = machine.run(args.step("devpi-image"), check=False)
    assert result.returncode != 0 and "Docker Desktop is not running" in result.stderr
    (machine.state / "docker-down").unlink()
    result = machine.run(image_args(machine, plain_registry, push_registry=f"127.0.0.1:{free_port()}")
                         .step("devpi-image"), check=False)
    assert result.returncode != 0 and "does not answer" in result.stderr and docker_calls(machine) == ["docker info"]


def test_delete_leaves_the_image(machine: Machine, plain_registry: PushedImages) -> None:
    args = image_args(machine, plain_registry)
    result = machine.run(args.step("devpi-image"), "delete")
    assert "left" in result.stderr and docker_calls(machine) == []


def test_the_stub_refuses_what_docker_refuses(machine: Machine) -> None:
    env = {"STUB_STATE": str(machine.state), "PATH": "/usr/bin:/bin"}
    docker = str(machine.bin / "docker")
    result = subprocess.run([docker, "save", "--bogus", "x"], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 125 and "unknown flag: --bogus" in result.stderr
    result = subprocess.run([docker, "save", "-o", str(machine.root / "x.tar"), "nope:1"], env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1 and "No such image: nope:1" in result.stderr
    result = subprocess.run([docker, "buildx", "build", "--squash", "."], env=env, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 1 and "unknown flag: --squash" in result.stderr
    result = subprocess.run([docker, "buildx", "build", str(machine.root)], env=env, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 1 and "failed to read dockerfile" in result.stderr
