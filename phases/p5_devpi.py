"""Phase 5, devpi: the devpi image built on indri and pushed to zot, the StatefulSet at ``pypi``, and the host's
devpi LaunchAgent retired, with the host server's data moved in.

Takes indri, the cluster's providers (phase 0) and the ProxyClass (phase 1). One ``pulumi up`` from 4 to 5 runs:

1. the image: ``blumeops/devpi:<content hash>`` built for linux/arm64 with Docker Desktop and pushed to zot
   (nothing when zot has the tag); staged: namespace ``devpi``, the claim ``data-devpi-0`` (both kept by a
   rollback), the Secret ``devpi-root``, the Service;
2. the LaunchAgent ``mcquack.eblume.devpi`` stopped (in whichever launchd domain ansible loaded it) and
   ``svc:pypi``'s serve entry cleared;
3. the data move: ``devpi-export`` of the stopped host server, baked into ``blumeops/devpi-import:<content
   hash>`` (``DevpiExport``), which the StatefulSet's init container imports into the volume on its first
   start, so private packages, users and indexes (``eblume/dev``) survive;
4. the StatefulSet, ready; then ``svc:pypi`` released and the Ingress ``pypi`` (tagged ``tag:devpi``).

borgmatic stops backing up ``/Users/erichblume/devpi`` (phase 3's ``RETIRED_SOURCES``) only once the
StatefulSet, its init container having imported the export, is ready (``BORGMATIC_WAITS``): the directory
stays on indri untouched, and the repository (append-only) keeps every archive that holds it. The cluster
server's own data has no backup of its own yet (the claim is on minikube's disk): see docs/operating.md, "Known limits".

Lowering the target to 4 undoes it in reverse: the Ingress goes, ``svc:pypi`` is recreated, the StatefulSet
goes, the export copy on indri is removed, the LaunchAgent is restored and serves ``svc:pypi`` from its own,
untouched server directory. The namespace and the claim stay with the cluster server's data; raising the
target again takes them back and the entrypoint finds the server directory initialised (what the host server
got in between is not carried again: see docs/operating.md, "Known limits").
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from components.apps import Devpi, DevpiArgs, ImportSource
from components.host import (
    DevpiExport,
    DevpiExportArgs,
    DevpiImage,
    DevpiImageArgs,
    LegacyLaunchAgent,
)
from phases import Handover, Phase
from phases import settings as s
from phases.p0_foundation import (
    INDRI,
    KEPT_STATE,
    KUBERNETES,
    REGISTRY_SERVICE,
    TAILNET_POLICY,
    ZotSettings,
    legacy_name_claim,
    proxy_tag_part,
    service_host,
)
from phases.p1_kubernetes import PROXY_CLASS
from phases.p3_postgres_data import BORGMATIC_WAITS, RETIRED_SOURCES
from phases.parsers import copied_dir
from phases.settings import HOME


@s.section("devpi")
class DevpiSettings:
    """devpi in the cluster, and the LaunchAgent on indri it replaces."""

    root_password: pulumi.Output[str] = s.setting(s.text, "devpi's root password (Secret devpi-root)", secret=True,
                                                  required=True, example="<password>")
    hostname: str = s.setting(s.dns_label, "devpi's tailnet hostname", default="pypi")
    storage_size: str = s.setting(s.storage_quantity, "devpi's volume (kept by a rollback)", default="50Gi",
                                  example="50Gi")
    legacy_agent: str = s.setting(s.text, "the LaunchAgent label of the devpi-server indri runs",
                                  default="mcquack.eblume.devpi")
    legacy_service: str = s.setting(s.tailscale_service, "the Tailscale Service that holds the name before",
                                    default="svc:pypi")
    legacy_server_dir: str = s.setting(copied_dir, "the host devpi-server's --serverdir (exported, never changed)",
                                       default=f"{HOME}/devpi")
    devpi_export: str = s.setting(s.tool_path,
                                  "devpi-export beside the host's devpi-server (`mise which devpi-export`)",
                                  default=f"{HOME}/.local/share/mise/installs/python/3.12/bin/devpi-export")


SETTINGS = (DevpiSettings,)

AMENDS = (
    RETIRED_SOURCES.extend(lambda settings: (settings.section(DevpiSettings).legacy_server_dir,)),
    TAILNET_POLICY.extend((proxy_tag_part(
        "P5", "tag:devpi", {"src": ["autogroup:member"], "dst": ["tag:devpi"], "ip": ["tcp:443"]},
        tests=({"src": "<member-user>", "accept": ["tag:devpi:443"]},)),)),
)


def build(phase: Phase, handover: Handover) -> None:
    host = handover.take(INDRI)
    tailnet = handover.settings.tailnet
    devpi = handover.section(DevpiSettings)
    child = pulumi.ResourceOptions(parent=phase)
    image_args = DevpiImageArgs(host=host, pull_registry=service_host(REGISTRY_SERVICE.name, tailnet.name),
                                push_registry=f"localhost:{handover.section(ZotSettings).port}")
    image = DevpiImage("devpi-image", image_args, child)

    def data_move(stopped: Sequence[pulumi.Resource]) -> tuple[Sequence[pulumi.Resource], ImportSource | None]:
        export = DevpiExport(
            "devpi-move",
            DevpiExportArgs(host=host, image=image_args, server_dir=devpi.legacy_server_dir,
                            devpi_export=devpi.devpi_export),
            pulumi.ResourceOptions(parent=phase, depends_on=[*stopped, image.build]))
        return [export], ImportSource(export.image)

    app = Devpi(
        "devpi",
        DevpiArgs(
            provider=handover.take(KUBERNETES),
            kept=handover.take(KEPT_STATE),
            proxy_class=handover.take(PROXY_CLASS),
            tailnet=tailnet.name,
            image=image.image,
            image_built=(image.build,),
            root_password=devpi.root_password,
            hostname=devpi.hostname,
            storage_size=devpi.storage_size,
            legacy=legacy_name_claim(handover, LegacyLaunchAgent(devpi.legacy_agent), devpi.legacy_service),
            data_move=data_move,
        ),
        child,
    )
    handover.endpoints["devpi"] = app.outside_url
    # borgmatic lets the host server's directory go only once the cluster's server imported it and serves
    assert app.stateful_set is not None
    handover.wait_also(BORGMATIC_WAITS, [app.stateful_set])
