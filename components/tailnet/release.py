"""TailnetNameRelease: frees ``<name>.<tailnet>`` from the hand-made Tailscale Service ``svc:<name>`` that held
it while the host served the app, so the in-cluster proxy that replaces it registers as ``<name>`` (not
``<name>-1``).

Why a host step calling the Tailscale API, not a ``pulumi_tailscale.Service``: the legacy Services were made
in the admin console and are not in the program's state. Importing one as a ``tailscale.Service`` and then
dropping it from the program deletes it only at the end of that update, after the new Ingress registered
(Pulumi deletes resources that left the program last), so the name would already be taken; and nothing in
pulumi-tailscale deletes a Service as a step other resources can wait for. A command can: its create is the
deletion (``DELETE /api/v2/tailnet/<tailnet>/vip-services/svc:<name>``, the path Tailscale's Go client and
so the Terraform/Pulumi provider use), the Ingress ``depends_on`` it, and its delete recreates the Service
from the definition the create kept (``PUT``, same body), which is the rollback. It runs on the host like
every host step (curl and plutil ship with macOS); the OAuth client secret travels in the step's secret stdin
and reaches curl on its stdin, never in a command string or an argument list.

Known limit: pulumi-command runs the delete with the stdin of the last create, so a rollback after the OAuth
client secret was rotated uses the old secret; re-run ``pulumi up`` once with the new one before lowering the
target.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import pulumi

from components.host.connection import Host
from components.host.script import HostStep

RELEASE_TYPE = "blumeops:tailnet:TailnetNameRelease"
TAILSCALE_API = "https://api.tailscale.com"
_SERVICE = re.compile(r"^svc:[a-z0-9][a-z0-9-]*$")
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True, slots=True)
class TailnetNameReleaseArgs:
    host: Host  # where the API is called from (it needs curl and plutil)
    service: str  # "svc:grafana"
    oauth_client_id: str  # an OAuth client with the services scope (write)
    oauth_client_secret: pulumi.Output[str]
    tailnet: str = "-"  # "-": the tailnet of the OAuth client
    api_url: str = TAILSCALE_API
    # Where the definitions are kept on the host (absolute); default <home>/.local/state/blumeops/released.
    state_root: str | None = None
    # What must happen first: the retirement of the host's serve entry of ``service`` (whose rollback then
    # runs after this one's, when the Service exists again).
    after: Sequence[pulumi.Resource] = ()

    def __post_init__(self) -> None:
        problems = []
        if not _SERVICE.match(self.service):
            problems.append(f"service {self.service!r} is not a Tailscale Service name (svc:<name>)")
        if not self.oauth_client_id.strip():
            problems.append("oauth_client_id is empty")
        url = urlsplit(self.api_url)
        if url.scheme != "https" and not (url.scheme == "http" and url.netloc.split(":")[0] in _LOOPBACK):
            problems.append(f"api_url {self.api_url!r} must be https (plain http only to a loopback test server)")
        if self.state_root is not None and not self.state_root.startswith("/"):
            problems.append(f"state_root {self.state_root!r} must be an absolute path")
        if problems:
            raise ValueError(f"release of {self.service}: " + "; ".join(problems))

    @property
    def name(self) -> str:
        return self.service.removeprefix("svc:")

    @property
    def state_dir(self) -> str:
        root = self.state_root or f"{self.host.home}/.local/state/blumeops/released"
        return f"{root.rstrip('/')}/{self.name}"

    def step(self, name: str) -> HostStep:
        return HostStep(
            name,
            "retire-tailscale-service",
            {
                "SERVICE": self.service,
                "API_URL": self.api_url.rstrip("/"),
                "TAILNET": self.tailnet,
                "OAUTH_CLIENT_ID": self.oauth_client_id,
                "STATE_DIR": self.state_dir,
                "CURL": self.host.tools.curl,
                "PLUTIL": self.host.tools.plutil,
            },
            secrets=("OAUTH_CLIENT_SECRET",),
            does=f"DELETEs the Tailscale Service {self.service} (its definition kept under {self.state_dir})",
            undoes=f"recreates {self.service} from the kept definition (its IPv4 address asked back)",
        )


class TailnetNameRelease(pulumi.ComponentResource):
    """Deletes the Tailscale Service ``service`` through the Tailscale API (a step on the host, the OAuth
    client secret on stdin), keeping its definition on the host under ``state_dir`` first; a Service that
    does not exist is left alone. Whatever claims the name next (an Ingress, a LoadBalancer) depends on it.

    A create that finds the Service again (made again by hand after an earlier release) compares it with the
    kept copy (comment, ports, tags, annotations, IPv4 address): the same, it stays the record and the Service
    is deleted once more; different, the new definition becomes the record (the older one kept aside as
    ``service.json.<UTC time>.prev``), so the rollback restores what was there last.

    Undo: deleting it recreates the Service from the kept definition: same name, comment, ports, tags and
    annotations (checked after the call), its IPv4 address asked back (the API allocates the IPv6 one: it
    refuses one on creation). A Service of that name that exists already is never overwritten: matching the
    kept definition, it is left as it is; differing from it (redefined by hand since), the undo fails and
    changes nothing, naming the fixes (delete it in the admin console, or move the kept copy away). Give it
    the retirement of the host's serve entry in ``after``: then the Service is back before the rollback of
    that retirement serves it again.
    """

    def __init__(self, name: str, args: TailnetNameReleaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        step = args.step(f"{name}-service")
        super().__init__(
            RELEASE_TYPE,
            name,
            {
                "service": args.service,
                "tailnet": args.tailnet,
                "apiUrl": args.api_url,
                "stateDir": args.state_dir,
            },
            opts,
        )
        self.release = step.register(
            args.host,
            secret_values={"OAUTH_CLIENT_SECRET": args.oauth_client_secret},
            identity=(args.service, args.tailnet, args.api_url),
            # Another Service: recreate the old one first, then release the new one.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after) or None, delete_before_replace=True),
        )
        # The definition the create deleted (JSON), or "null" when the name was free already.
        self.definition: pulumi.Output[str] = self.release.stdout
        self.register_outputs({"service": args.service})
