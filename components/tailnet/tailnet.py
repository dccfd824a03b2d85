"""The Tailnet component: the whole policy, the tags of the homelab's devices, its Tailscale Services."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_tailscale as tailscale

from components.tailnet.acl import PolicyPart, render_policy


@dataclass(frozen=True, slots=True)
class DeviceTagging:
    """Tags for one device, found by its MagicDNS name (``indri.tail8d86e.ts.net``)."""

    part: str  # child name: "indri" -> "<name>-indri-tags"
    device_name: str
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TailscaleService:
    """A Tailscale Service (``svc:registry``) that a host may advertise with ``tailscale serve --service``."""

    name: str
    ports: tuple[str, ...]
    comment: str


@dataclass(frozen=True, slots=True)
class TailnetArgs:
    admins: tuple[str, ...]
    members: tuple[str, ...]
    devices: tuple[DeviceTagging, ...]
    services: tuple[TailscaleService, ...]
    provider: pulumi.ProviderResource
    # what the phases add to the policy file's base (acl.PolicyPart), and whether the legacy parts (indri's
    # native services' tags, Services, the brew forge's egress) are in: off from phase 9 on
    policy_parts: tuple[PolicyPart, ...] = ()
    legacy: bool = True


class Tailnet(pulumi.ComponentResource):
    """Puts on the tailnet: the policy from ``policy.hujson`` (replacing the whole ACL), the tags of each
    listed device, and one Tailscale Service per entry, created only after the devices are tagged (a host
    must be tagged before ``tailscale serve --service`` accepts it, and auto-approval matches on tags), so
    whatever waits for a Service waits for the tags too.

    Undo: destroying it leaves the policy as it is (``resetAclOnDestroy`` is off on purpose: a reset would
    put Tailscale's allow-all default in place, and a destroy must never open the tailnet; edit the policy
    in the admin console if it should change), removes the tags and deletes the Services (the hosts'
    ``tailscale serve`` entries are cleared first by the host steps' ``delete``, which depend on these
    Services and are destroyed before them). A Service that already existed (made in the admin console) is
    overwritten on create, comment and tags included, unless it was imported first (see README).
    """

    def __init__(self, name: str, args: TailnetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        policy = render_policy(args.admins, args.members, parts=args.policy_parts, legacy=args.legacy)
        super().__init__(
            "blumeops:tailnet:Tailnet",
            name,
            {
                "devices": {d.device_name: sorted(d.tags) for d in args.devices},
                "services": {s.name: list(s.ports) for s in args.services},
            },
            opts,
        )
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.acl = tailscale.Acl(
            f"{name}-acl",
            acl=policy,
            overwrite_existing_content=True,
            # a destroy must never open the tailnet: resetting would install the allow-all default policy
            reset_acl_on_destroy=False,
            opts=child,
        )
        # Tags and Services may only be used once the policy defines and owns them.
        after_acl = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.acl]))
        self.device_tags: dict[str, tailscale.DeviceTags] = {}
        for device in args.devices:
            found = tailscale.get_device_output(
                name=device.device_name,
                opts=pulumi.InvokeOutputOptions(parent=self, provider=args.provider),
            )
            self.device_tags[device.part] = tailscale.DeviceTags(
                f"{name}-{device.part}-tags",
                device_id=found.node_id,
                tags=sorted(device.tags),
                opts=after_acl,
            )
        # serve needs the host tagged: a Service exists only once every listed device has its tags
        after_tags = pulumi.ResourceOptions.merge(
            after_acl, pulumi.ResourceOptions(depends_on=[self.acl, *self.device_tags.values()])
        )
        self.services: dict[str, tailscale.Service] = {
            service.name: tailscale.Service(
                f"{name}-{service.name.removeprefix('svc:')}",
                name=service.name,
                ports=list(service.ports),
                comment=service.comment,
                opts=after_tags,
            )
            for service in args.services
        }
        self.register_outputs({"aclId": self.acl.id})
