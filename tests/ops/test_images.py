"""`ops images verify` against a real registry (Debian's docker-registry) on loopback."""

from __future__ import annotations

import argparse
import datetime
import io
from pathlib import Path
from typing import Any

import pytest
import yaml

from ops import images
from tests.servers.registry import PushedImages

servers = pytest.mark.servers
HEADER = "# test images file\n# second header line\n\n"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ops")
    images.add_parser(top.add_subparsers(dest="command", required=True))
    return top


def run(argv: list[str]) -> tuple[int, str]:
    args = parser().parse_args(argv)
    out = io.StringIO()
    code = args.func(args, out)
    return code, out.getvalue()


def write_images(path: Path, references: list[str], platforms: list[str] | None = None) -> None:
    document: dict[str, Any] = {
        "registries": {"mirrored": ["docker.io"]},
        "images": {ref: {"platforms": platforms or ["linux/arm64"], "digest": None, "verified": None,
                         "source": "test"} for ref in references},
    }
    path.write_text(HEADER + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def arm64_refs(pushed: PushedImages) -> list[str]:
    return [ref for ref, (platforms, _digest) in pushed.images.items() if "linux/arm64" in platforms]


@servers
def test_verify_records_platforms_and_digests(plain_registry: PushedImages, tmp_path: Path) -> None:
    path = tmp_path / "images.yaml"
    refs = arm64_refs(plain_registry)
    assert len(refs) == 3
    write_images(path, refs, ["linux/s390x"])
    code, output = run(["images", "verify", "--file", str(path), "--insecure-registry", plain_registry.registry.host])
    assert code == 0, output
    written = yaml.safe_load(path.read_text())
    assert path.read_text().startswith(HEADER)
    for ref in refs:
        platforms, digest = plain_registry.images[ref]
        entry = written["images"][ref]
        assert tuple(entry["platforms"]) == platforms
        assert entry["digest"] == digest
        assert str(entry["verified"]) == datetime.date.today().isoformat()
        assert ref in output
    assert output.splitlines()[0].split() == ["IMAGE", "STATUS", "PLATFORMS", "DIGEST"]
    assert "3 image(s) verified: 3 new" in output
    # the index's unknown/unknown attestation entry is not a platform
    assert "unknown" not in path.read_text()

    # a second run, --check: the file now agrees with the registry
    code, output = run(["images", "verify", "--check", "--file", str(path),
                        "--insecure-registry", plain_registry.registry.host])
    assert code == 0, output
    assert "3 ok" in output


@servers
def test_check_reports_mismatch_without_writing(plain_registry: PushedImages, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "images.yaml"
    refs = arm64_refs(plain_registry)
    write_images(path, refs)
    before = path.read_text()
    monkeypatch.setenv(images.INSECURE_ENV, plain_registry.registry.host)
    code, output = run(["images", "verify", "--check", "--file", str(path)])
    assert code == 1
    assert "disagrees" in output and "3 new" in output
    assert path.read_text() == before

    # verified, then someone edits the platforms by hand: --check says which entry changed
    assert run(["images", "verify", "--file", str(path)])[0] == 0
    document = yaml.safe_load(path.read_text())
    document["images"][refs[0]]["platforms"] = ["linux/arm64", "linux/riscv64"]
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    before = path.read_text()
    code, output = run(["images", "verify", "--check", "--file", str(path)])
    assert code == 1
    assert "1 changed" in output and "2 ok" in output
    assert next(line for line in output.splitlines() if line.startswith(refs[0])).split()[1] == "changed"
    assert path.read_text() == before


@servers
def test_amd64_only_image_fails(plain_registry: PushedImages, tmp_path: Path) -> None:
    path = tmp_path / "images.yaml"
    [amd64] = [ref for ref, (platforms, _d) in plain_registry.images.items() if platforms == ("linux/amd64",)]
    write_images(path, [amd64])
    code, output = run(["images", "verify", "--file", str(path), "--insecure-registry", plain_registry.registry.host])
    assert code == 1
    assert "no-arm64" in output
    entry = yaml.safe_load(path.read_text())["images"][amd64]
    assert entry["platforms"] == ["linux/amd64"]
    assert entry["digest"] == plain_registry.images[amd64][1]


@servers
def test_missing_image_is_an_error(plain_registry: PushedImages, tmp_path: Path) -> None:
    path = tmp_path / "images.yaml"
    missing = f"{plain_registry.registry.host}/blumeops/missing:1"
    write_images(path, [missing])
    code, output = run(["images", "verify", "--check", "--file", str(path),
                        "--insecure-registry", plain_registry.registry.host])
    assert code == 1
    assert "error" in output and "HTTP 404" in output and "MANIFEST_UNKNOWN" in output


@servers
def test_plain_http_needs_opt_in(plain_registry: PushedImages) -> None:
    ref = images.parse_image(arm64_refs(plain_registry)[0])
    with pytest.raises(images.RegistryError, match="cannot reach https://"):
        images.RegistryClient(timeout=5).inspect(ref)


@servers
def test_bearer_token_challenge(token_registry: PushedImages) -> None:
    assert token_registry.token_server is not None
    client = images.RegistryClient(insecure_hosts=frozenset({token_registry.registry.host}))
    # the session's registry is shared: only the tokens this test asks for count
    before = len(token_registry.token_server.requests)
    for ref, (platforms, digest) in token_registry.images.items():
        facts = client.inspect(images.parse_image(ref))
        assert facts.platforms == platforms, ref
        assert facts.digest == digest, ref
    requests = token_registry.token_server.requests[before:]
    assert len(requests) == len(token_registry.images)  # one token per repository, reused for the blob GET
    assert all(r["service"] == [token_registry.token_server.service] for r in requests)
    assert {r["scope"][0] for r in requests} == {
        f"repository:{images.parse_image(ref).repository}:pull" for ref in token_registry.images}


@servers
def test_token_registry_rejects_anonymous_requests(token_registry: PushedImages) -> None:
    client = images.RegistryClient(insecure_hosts=frozenset({token_registry.registry.host}))
    status, headers, _body = client._open(f"{token_registry.registry.base}/v2/blumeops/single/manifests/3",
                                          images.ACCEPT, None)
    assert status == 401
    assert images._header(headers, "WWW-Authenticate", ).startswith('Bearer realm="http://127.0.0.1:')
    status, _headers, _body = client._open(f"{token_registry.registry.base}/v2/blumeops/single/manifests/3",
                                           images.ACCEPT, "not-a-valid-token")
    assert status == 401


# -- without a registry --------------------------------------------------------------------------

def test_docker_hub_host_and_library_prefix() -> None:
    client = images.RegistryClient()
    assert client.api_base("docker.io") == "https://registry-1.docker.io"
    assert client.api_base("ghcr.io") == "https://ghcr.io"
    assert images.RegistryClient(insecure_hosts=frozenset({"localhost:5050"})).api_base("localhost:5050") == \
        "http://localhost:5050"
    assert images.parse_image("redis:8").repository == "library/redis"
    assert images.parse_image("lscr.io/linuxserver/transmission:4.0.6").registry == "ghcr.io"


def test_platform_normalisation() -> None:
    assert images.normalise_platform({"os": "linux", "architecture": "arm64", "variant": "v8"}) == "linux/arm64"
    assert images.normalise_platform({"os": "linux", "architecture": "arm", "variant": "v7"}) == "linux/arm/v7"
    assert images.normalise_platform({"os": "unknown", "architecture": "unknown"}) is None


def test_the_real_images_file_parses() -> None:
    loaded = images.read_images_file(images.DEFAULT_IMAGES_FILE)
    assert loaded.header.startswith("#")
    assert images.render_images_file(loaded).startswith(loaded.header)
    assert yaml.safe_load(images.render_images_file(loaded)) == loaded.document
