"""DevpiImage: the devpi image, built on the host with Docker Desktop and pushed to the host's registry under a
tag that is a content hash of its build context (``components/host/images/devpi``).

The tag is computed here, from the same bytes the step sends, so the plan knows the image reference offline;
the step recomputes it from the files it wrote and refuses to build on a mismatch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi

from components.host.connection import Host
from components.host.script import HostStep

DEVPI_IMAGE_TYPE = "blumeops:host:DevpiImage"
IMAGES_DIR = Path(__file__).resolve().parent / "images"
DEVPI_CONTEXT = IMAGES_DIR / "devpi"
TAG_LENGTH = 16
# The build's own bound: a first build pulls the base image and installs every requirement.
BUILD_TIMEOUT_MINUTES = 40


def context_files(directory: Path) -> dict[str, str]:
    """The build context: every file of ``directory`` (flat, text), by name."""
    files = {}
    for path in sorted(directory.iterdir()):
        if path.is_dir():
            raise ValueError(f"{path}: the build context is flat (no directories)")
        files[path.name] = path.read_text(encoding="utf-8")
    if "Dockerfile" not in files:
        raise ValueError(f"{directory} has no Dockerfile")
    return files


def content_tag(files: Mapping[str, str | bytes]) -> str:
    """sha256 over name, NUL, length, NUL, bytes of every file (sorted by name): any byte of any file, and any
    name, changes it. The first 16 hex digits (64 bits). devpi-image.sh computes the same."""
    digest = hashlib.sha256()
    for name in sorted(files):
        value = files[name]
        data = value.encode("utf-8") if isinstance(value, str) else value
        digest.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return digest.hexdigest()[:TAG_LENGTH]


@dataclass(frozen=True, slots=True)
class DevpiImageArgs:
    host: Host
    # Where the cluster pulls from ("registry.<tailnet>.ts.net") and where the host pushes to (zot on the
    # host's loopback, "localhost:5050"): the same registry under two names.
    pull_registry: str
    push_registry: str
    repository: str = "blumeops/devpi"
    platform: str = "linux/arm64"
    context_dir: Path = DEVPI_CONTEXT
    # macOS's own tools (the preamble carries absolute paths: a non-interactive SSH shell has no PATH to speak of)
    shasum: str = "/usr/bin/shasum"
    tar: str = "/usr/bin/tar"
    files: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.files:
            object.__setattr__(self, "files", context_files(self.context_dir))
        for registry in (self.pull_registry, self.push_registry):
            if not registry or "/" in registry:
                raise ValueError(f"DevpiImage: {registry!r} is not a registry host[:port]")
        if self.platform.count("/") != 1:
            raise ValueError(f"DevpiImage: the platform {self.platform!r} is not os/arch")

    @property
    def tag(self) -> str:
        return content_tag(self.files)

    @property
    def image(self) -> str:
        """What the cluster pulls: ``<pull_registry>/<repository>:<tag>``."""
        return f"{self.pull_registry}/{self.repository}:{self.tag}"

    @property
    def push_ref(self) -> str:
        return f"{self.push_registry}/{self.repository}:{self.tag}"

    def step(self, name: str) -> HostStep:
        variables: dict[str, str | int | bool] = {
            "DOCKER": self.host.tools.docker,
            "CURL": self.host.tools.curl,
            "JQ": self.host.tools.jq,
            "SHASUM": self.shasum,
            "TAR": self.tar,
            "REGISTRY": self.push_registry,
            "REPOSITORY": self.repository,
            "IMAGE_TAG": self.tag,
            "PLATFORM": self.platform,
            "FILE_COUNT": len(self.files),
        }
        for index, file_name in enumerate(sorted(self.files), start=1):
            variables[f"FILE_{index}_NAME"] = file_name
            variables[f"FILE_{index}_TEXT"] = self.files[file_name]
        return HostStep(
            name, "devpi-image", variables,
            does=(f"builds {self.repository}:{self.tag} for {self.platform} with Docker Desktop and pushes it to "
                  f"{self.push_registry} (nothing when the registry has that tag already)"),
            undoes=f"nothing: {self.repository}:{self.tag} stays in the registry and in Docker Desktop's store",
        )


class DevpiImage(pulumi.ComponentResource):
    """Puts the devpi image into the host's registry: ``<repository>:<tag>``, the tag a content hash of
    ``components/host/images/devpi`` (Dockerfile, requirements, entrypoint), built for ``platform`` with
    Docker Desktop's docker and pushed with curl from the host. An unchanged context builds nothing; a changed
    byte makes a new tag (never ``latest``), so a new image never replaces the one a running pod uses.

    Undo: nothing is removed. The image stays in the registry (a rollback and a re-raise find it and build
    nothing) and in Docker Desktop's image store; ``docker image rm <repository>:<tag>`` and zot's garbage
    collection (after deleting the tag with zot's API) remove them by hand.
    ``image`` (the reference the cluster pulls) and ``tag`` are plain strings, known offline.
    """

    def __init__(self, name: str, args: DevpiImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        step = args.step(f"{name}-build")
        super().__init__(
            DEVPI_IMAGE_TYPE, name,
            {"image": args.image, "tag": args.tag, "platform": args.platform, "pushRegistry": args.push_registry,
             "artifacts": {f"host/devpi-image/{file_name}": text for file_name, text in args.files.items()}},
            opts,
        )
        self.tag = args.tag
        self.image = args.image
        self.build = step.register(args.host, timeout_minutes=BUILD_TIMEOUT_MINUTES,
                                   opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"image": self.image, "tag": self.tag})
