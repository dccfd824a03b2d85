"""TailscaleServe: one ``tailscale serve --service`` entry on the host, with a fixed target."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.host.connection import Host
from components.host.script import HostStep

SERVE_TYPE = "blumeops:host:TailscaleServe"
PROTOCOLS = ("https", "tcp")


@dataclass(frozen=True, slots=True)
class TailscaleServeArgs:
    host: Host
    service: str  # "svc:registry"
    protocol: str  # "https" (TLS terminated by tailscaled) or "tcp" (passthrough)
    port: int
    target: str  # "http://localhost:5050", "tcp://localhost:6443"
    # The tailscale.Service the entry advertises: it must exist before `tailscale serve --service` runs (the
    # Tailnet component creates a Service only after the hosts' device tags, which serve needs as well).
    tailscale_service: pulumi.Resource | None = None

    def __post_init__(self) -> None:
        if not self.service.startswith("svc:"):
            raise ValueError(f"serve entry: {self.service!r} is not a Tailscale Service name (svc:<name>)")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"serve entry {self.service}: protocol {self.protocol!r} is not one of {PROTOCOLS}")

    def step(self, name: str) -> HostStep:
        return HostStep(
            name=name,
            script="tailscale-serve",
            variables={
                "SERVICE": self.service,
                "SERVE_PROTOCOL": self.protocol,
                "SERVE_PORT": self.port,
                "SERVE_TARGET": self.target,
                "TAILSCALE": self.host.tools.tailscale,
                "PLUTIL": self.host.tools.plutil,
            },
            does=f"serves {self.service} {self.protocol}:{self.port} from the host, forwarding to {self.target}",
            undoes=f"clears the serve entry of {self.service}",
        )


class TailscaleServe(pulumi.ComponentResource):
    """Points ``<service>`` (``--<protocol>=<port>``) at ``target`` on the host, unless it already does.

    Undo: deleting it runs ``tailscale serve clear <service>``.
    """

    def __init__(self, name: str, args: TailscaleServeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        step = args.step(f"{name}-entry")
        super().__init__(
            SERVE_TYPE,
            name,
            {
                "service": args.service,
                "protocol": args.protocol,
                "port": args.port,
                "target": args.target,
            },
            opts,
        )
        depends = [args.tailscale_service] if args.tailscale_service is not None else []
        self.entry = step.register(
            args.host, identity=(args.service,), opts=pulumi.ResourceOptions(parent=self, depends_on=depends)
        )
        self.register_outputs({})
