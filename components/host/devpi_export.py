"""DevpiExport: the host's devpi server, exported with its own ``devpi-export`` once its agent is stopped, and
carried to the cluster as an image: the devpi image's build context plus the export at ``/import``, built on the
host and pushed to the host's registry under a content hash of that whole context.

The tag depends on the export, which exists only on the host: the step prints the image reference as the last
line of its stdout, and ``image`` is read from there (checked against the expected repository and a tag of 16 hex
digits). An offline plan has no such stdout: ``ops/engine/harness.py`` must print one for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi

from components.host.connection import Host
from components.host.devpi_image import TAG_LENGTH, DevpiImageArgs
from components.host.script import HostStep, require_absolute

DEVPI_EXPORT_TYPE = "blumeops:host:DevpiExport"
IMPORT_PATH = "/import"  # where the import image holds the export (the init container copies it from there)
IMPORT_CONTEXT = "import"  # the export's directory in the build context
# What the import image adds to the devpi image: the export, owned by the image's user (uid 1000).
IMPORT_DOCKERFILE = (
    "\n# The host server's export (devpi-export), which the first start imports (DEVPI_IMPORT_DIR): added by\n"
    "# components/host/devpi_export.py; every line above is the devpi image's, so buildx's cache serves them.\n"
    f"COPY --chown=1000:1000 {IMPORT_CONTEXT}/ {IMPORT_PATH}/\n"
)
# Pulumi's bound: copies of the server directory and the export (LONG each, 30 min) and the build (LONG).
EXPORT_TIMEOUT_MINUTES = 100
_LOOPBACK_URL = re.compile(r"^http://(localhost|127\.0\.0\.1|\[::1\]):[0-9]{1,5}$")


def import_files(image: DevpiImageArgs) -> dict[str, str]:
    """The import image's context files: the devpi image's, its Dockerfile ending in the COPY of the export."""
    if IMPORT_CONTEXT in image.files:
        raise ValueError(f"DevpiExport: the devpi context has a file named {IMPORT_CONTEXT!r}, the export's place")
    files = dict(image.files)
    files["Dockerfile"] = files["Dockerfile"].rstrip("\n") + "\n" + IMPORT_DOCKERFILE
    return files


def parse_image_reference(stdout: str, prefix: str) -> str:
    """The last line of the step's stdout, which must be ``<prefix>:<16 hex digits>``."""
    lines = (stdout or "").strip().splitlines()
    reference = lines[-1].strip() if lines else ""
    if not re.fullmatch(re.escape(prefix) + f":[0-9a-f]{{{TAG_LENGTH}}}", reference):
        raise ValueError(f"DevpiExport: the export step's last line of stdout is {reference!r}, not "
                         f"{prefix}:<{TAG_LENGTH} hex digits> (an offline plan: ops/engine/harness.py prints none)")
    return reference


@dataclass(frozen=True, slots=True)
class DevpiExportArgs:
    host: Host
    image: DevpiImageArgs  # the devpi image: its context files, registries, platform and macOS tools
    server_dir: str  # the host server's directory (devpi-server --serverdir); read, never written
    # The absolute path of the host's devpi-export: the one installed beside the devpi-server that runs on
    # server_dir (with mise: what `mise which devpi-export` prints), so that it reads the server's own format.
    devpi_export: str
    # where the export is kept between runs; default <home>/.local/state/blumeops/devpi-export
    work_dir: str = ""
    listen_url: str = "http://localhost:3141"  # where the legacy server answers while it runs
    repository: str = "blumeops/devpi-import"

    def __post_init__(self) -> None:
        if not self.work_dir:
            object.__setattr__(self, "work_dir", f"{self.host.home}/.local/state/blumeops/devpi-export")
        for label, path in (("server_dir", self.server_dir), ("devpi_export", self.devpi_export),
                            ("work_dir", self.work_dir)):
            require_absolute("DevpiExport", label, path)
        inside = (f"{self.server_dir}/", f"{self.work_dir}/")
        if inside[0].startswith(inside[1]) or inside[1].startswith(inside[0]):
            raise ValueError(f"DevpiExport: work_dir {self.work_dir!r} and server_dir {self.server_dir!r} must not "
                             "contain one another (the step never writes the server directory)")
        if not _LOOPBACK_URL.match(self.listen_url):
            raise ValueError(f"DevpiExport: listen_url {self.listen_url!r} is not http://localhost:<port>")
        if not re.fullmatch(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*", self.repository):
            raise ValueError(f"DevpiExport: {self.repository!r} is not a registry repository name")
        if self.repository == self.image.repository:
            raise ValueError("DevpiExport: the import image needs a repository of its own, not the devpi image's")
        import_files(self.image)

    @property
    def files(self) -> dict[str, str]:
        return import_files(self.image)

    @property
    def image_prefix(self) -> str:
        """What the cluster pulls, but the tag: ``<pull_registry>/<repository>``."""
        return f"{self.image.pull_registry}/{self.repository}"

    def step(self, name: str) -> HostStep:
        files = self.files
        variables: dict[str, str | int | bool] = {
            "DEVPI_EXPORT": self.devpi_export,
            "SERVER_DIR": self.server_dir,
            "WORK_DIR": self.work_dir,
            "LISTEN_URL": self.listen_url,
            "DOCKER": self.host.tools.docker,
            "CURL": self.host.tools.curl,
            "JQ": self.host.tools.jq,
            "SHASUM": self.image.shasum,
            "TAR": self.image.tar,
            "REGISTRY": self.image.push_registry,
            "PULL_REGISTRY": self.image.pull_registry,
            "REPOSITORY": self.repository,
            "PLATFORM": self.image.platform,
            "FILE_COUNT": len(files),
        }
        for index, file_name in enumerate(sorted(files), start=1):
            variables[f"FILE_{index}_NAME"] = file_name
            variables[f"FILE_{index}_TEXT"] = files[file_name]
        return HostStep(
            name, "devpi-export", variables,
            does=(f"exports the devpi server in {self.server_dir} (refused while it answers at {self.listen_url}) "
                  f"into {self.work_dir}, builds {self.repository}:<content hash> (the devpi image plus the export "
                  f"at {IMPORT_PATH}) and pushes it to {self.image.push_registry}; {self.server_dir} is only read"),
            undoes=(f"removes the export in {self.work_dir}; {self.server_dir} is not touched and the image stays "
                    "in the registry"),
        )


class DevpiExport(pulumi.ComponentResource):
    """Carries the host's devpi server to the cluster: one host step, ``<name>-export``, after the legacy agent's
    retirement (it refuses while anything answers at ``listen_url``/+api).

    On the host it puts: the export (``devpi-export`` run on a shadow copy of ``server_dir``: the server directory
    itself is only read, never written) in ``work_dir/export`` with ``work_dir/export.done``, reused while the
    server's files are unchanged; and in the registry ``<repository>:<tag>``, the devpi image plus the export at
    ``/import``, the tag a content hash of that context (an unchanged export builds and pushes nothing; a changed
    server gives a new tag).

    Undo: the delete removes ``work_dir``'s export (a re-raise exports the server as it is then); ``server_dir``
    is never touched. The image stays in the registry and in Docker Desktop's store (``docker image rm``, and
    zot's API plus its garbage collection, remove them by hand).

    ``image``: the reference the cluster pulls, ``<pull_registry>/<repository>:<tag>``, read from the last line
    of the step's stdout (known only once the step ran).
    """

    def __init__(self, name: str, args: DevpiExportArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        step = args.step(f"{name}-export")
        super().__init__(
            DEVPI_EXPORT_TYPE, name,
            {"serverDir": args.server_dir, "workDir": args.work_dir, "repository": args.repository,
             "artifacts": {f"host/devpi-import/{file_name}": text for file_name, text in args.files.items()}},
            opts,
        )
        self.build = step.register(args.host, identity=(args.server_dir, args.work_dir),
                                    timeout_minutes=EXPORT_TIMEOUT_MINUTES, opts=pulumi.ResourceOptions(parent=self))
        prefix = args.image_prefix
        self.image: pulumi.Output[str] = self.build.stdout.apply(lambda out: parse_image_reference(out, prefix))
        self.register_outputs({"image": self.image})
