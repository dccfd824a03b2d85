"""ForgejoOAuthApp: an OAuth2 application on the forge for a client of it (Woodpecker's login), made through the
forge's API by a host step with an admin's token, adopted when one of the same name exists, deleted on rollback.

Why a host step and not a provider: no Pulumi provider for Forgejo is among the program's pinned plugins, and
the host reaches the forge at its tailnet name (the step's curl, as for every other host call). The step prints
the application's id, client id and client secret as JSON; the stdout is a secret output, and ``client_id`` and
``client_secret`` are read from it (an offline plan has no such stdout: ``ops/engine/harness.py`` prints one).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components.host.connection import Host
from components.host.script import HostStep

FORGEJO_OAUTH_TYPE = "blumeops:host:ForgejoOAuthApp"


def parse_application(stdout: str) -> dict[str, str]:
    """The step's last line: {"id", "client_id", "client_secret"}."""
    lines = (stdout or "").strip().splitlines()
    try:
        found = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        found = None
    if not isinstance(found, dict) or not found.get("client_id") or not found.get("client_secret"):
        raise ValueError("ForgejoOAuthApp: the step printed no {id, client_id, client_secret} (an offline plan: "
                         "ops/engine/harness.py prints one)")
    return {"id": str(found.get("id", "")), "client_id": str(found["client_id"]),
            "client_secret": str(found["client_secret"])}


@dataclass(frozen=True, slots=True)
class ForgejoOAuthAppArgs:
    host: Host
    forge_url: str  # https://forge.<tailnet>
    name: str  # the application's name on the forge ("woodpecker")
    redirect_uri: str  # https://ci.<tailnet>/authorize
    token: pulumi.Output[str]  # an admin's token with write:user: secret
    after: Sequence[pulumi.Resource] = ()  # what makes the forge answer at forge_url (its Ingress)

    def __post_init__(self) -> None:
        for label, url in (("forge_url", self.forge_url), ("redirect_uri", self.redirect_uri)):
            if not url.startswith(("https://", "http://127.0.0.1:")) or any(c.isspace() for c in url):
                raise ValueError(f"ForgejoOAuthApp: {label} {url!r} must be an https URL")
        if self.forge_url.endswith("/"):
            raise ValueError("ForgejoOAuthApp: forge_url has no trailing /")
        if not self.name or not all(c.isalnum() or c in "-_." for c in self.name):
            raise ValueError(f"ForgejoOAuthApp: name {self.name!r} must be a plain name")

    def step(self, name: str) -> HostStep:
        tools = self.host.tools
        return HostStep(
            name, "forgejo-oauth-app",
            {"FORGE_URL": self.forge_url, "APP_NAME": self.name, "REDIRECT_URI": self.redirect_uri,
             "CURL": tools.curl, "JQ": tools.jq},
            secrets=("TOKEN",),
            does=(f"creates the OAuth2 application {self.name} on {self.forge_url} (redirect {self.redirect_uri}), "
                  "or adopts the one of that name with a new client secret"),
            undoes=f"deletes the OAuth2 application {self.name} on {self.forge_url}",
        )


class ForgejoOAuthApp(pulumi.ComponentResource):
    """Puts on the forge the OAuth2 application ``name`` (confidential, redirect ``redirect_uri``): one host step,
    ``<name>-oauth-app``. ``client_id`` and ``client_secret``: secret Outputs read from its stdout.

    Undo: the delete removes the application from the forge (Woodpecker's logins through it stop)."""

    def __init__(self, name: str, args: ForgejoOAuthAppArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(FORGEJO_OAUTH_TYPE, name, {"forge": args.forge_url, "application": args.name,
                                                    "redirectUri": args.redirect_uri}, opts)
        self.step = args.step(f"{name}-oauth-app").register(
            args.host, secret_values={"TOKEN": args.token}, identity=(args.forge_url, args.name),
            secret_stdout=True, opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after) or None))
        application = self.step.stdout.apply(parse_application)
        self.client_id: pulumi.Output[str] = pulumi.Output.secret(application.apply(lambda a: a["client_id"]))
        self.client_secret: pulumi.Output[str] = pulumi.Output.secret(application.apply(lambda a: a["client_secret"]))
        self.register_outputs({})
