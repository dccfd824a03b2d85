"""Phase 7, Forgejo: the brew forge moves into the cluster with its data and its identity, every clone keeps
trusting it, and ArgoCD follows it.

Takes indri, the cluster's providers (phase 0), the ProxyClass (phase 1) and borgmatic (phase 3). One
``pulumi up`` from 6 to 7 runs:

1. staged: namespace ``forgejo`` and the claim ``forgejo-data`` (both kept by a rollback), the Secret
   ``forgejo-identity`` with the brew forge's SECRET_KEY, INTERNAL_TOKEN and JWT_SECRET (from config: required,
   never fresh ones, or the database's two-factor and OAuth2 secrets could not be read);
2. ``forgejo-backup-check``: a borgmatic archive of the last day holds ``/opt/homebrew/var/forgejo``;
3. brew ``forgejo`` stopped and ``svc:forge``'s serve entries (HTTPS 443 and TCP 22) cleared;
4. ``forgejo-move-copy``: the forge's APP_DATA_PATH snapshotted, checked (sqlite integrity, every repository of
   the database present, ``git fsck``) and copied into the claim, owned by uid 1000, checked by checksum;
5. the forgejo chart (with the brew forge's layout: its SSH host keys are in the copied ``ssh/``), ready;
6. ``forgejo-clone-check``: one clone through the forge's SSH Service as ``forgejo``, trusting only the brew
   forge's host keys;
7. ``svc:forge`` released; the Ingress ``forge`` and the LoadBalancer ``git`` (both ``tag:forge``); ArgoCD's
   credentials and known hosts move to ``forgejo-ssh.forgejo.svc.cluster.local`` (cluster DNS, not a tailnet
   hairpin) and phase 1's egress Service ``forge`` goes; borgmatic lets ``/opt/homebrew/var/forgejo`` go.

Lowering the target to 6 undoes it in reverse: ArgoCD back on the brew forge through the egress Service, the
names go, ``svc:forge`` is recreated, the chart goes, the snapshot is removed, the brew forge restarts on its
untouched directory. The namespace and the claim stay with what the cluster forge got; raising the target again
finds them (``blumeops:forgejo.reimport`` decides what happens when the brew forge changed meanwhile).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi

from components.apps.forgejo import Forgejo, ForgejoArgs, ForgejoIdentity
from components.host import BrewService
from components.host.forgejo_move import (
    REIMPORT_CHOICES,
    ForgejoCloneCheckArgs,
    ForgejoMove,
    ForgejoMoveArgs,
)
from phases import Handover, Key, Phase
from phases import settings as s
from phases.p0_foundation import (
    INDRI,
    KEPT_STATE,
    KUBERNETES,
    TAILNET_POLICY,
    MinikubeSettings,
    legacy_name_claim,
    proxy_tag_part,
)
from phases.p1_kubernetes import ARGOCD_FORGE_WAITS, FORGE_REPOSITORY, PROXY_CLASS, ArgoCDSettings, ForgeRepository
from phases.p3_postgres_data import BORGMATIC, BORGMATIC_WAITS, RETIRED_SOURCES
from phases.parsers import copied_dir

FORGE = Key("forge", Forgejo, "the cluster's forge: its names and the Ingress that serves forge")
# In-cluster clients (ArgoCD) reach the forge by the chart's SSH Service, not through the tailnet.
CLUSTER_FORGE = ForgeRepository("forgejo-ssh.forgejo.svc.cluster.local", 22, egress=False)


def _app_ini_secret(raw: object) -> str:
    """A value of the brew forge's app.ini, as it is there."""
    value = s.text(raw)
    if len(value) < 16 or any(c.isspace() for c in value):
        raise s.InvalidValueError("is not a value of app.ini: copy it from the brew forge's "
                                  "/opt/homebrew/var/forgejo/custom/conf/app.ini (a fresh one would leave the "
                                  "database's encrypted secrets unreadable)")
    return value


def _identity(key: str, section: str) -> Any:
    app_ini = "/opt/homebrew/var/forgejo/custom/conf/app.ini"
    return s.setting(_app_ini_secret, f"the brew forge's [{section}] {key} (app.ini)", secret=True, required=True,
                     example=f"\"$(awk -F' = ' '/^{key} /{{print $2}}' {app_ini})\"")


@s.section("forgejo")
class ForgejoSettings:
    """Forgejo in the cluster, and the brew forgejo on indri it replaces."""

    chart_version: str = s.setting(s.chart_version, "forgejo chart version (charts.lock.yaml pins it)",
                                   default="15.0.3")
    secret_key: pulumi.Output[str] = _identity("SECRET_KEY", "security")
    internal_token: pulumi.Output[str] = _identity("INTERNAL_TOKEN", "security")
    jwt_secret: pulumi.Output[str] = _identity("JWT_SECRET", "oauth2")
    hostname: str = s.setting(s.dns_label, "the forge's web name", default="forge")
    ssh_hostname: str = s.setting(s.dns_label, "the forge's SSH name", default="git")
    storage_size: str = s.setting(s.storage_quantity, "the forge's volume (kept by a rollback)", default="10Gi",
                                  example="10Gi")
    legacy_formula: str = s.setting(s.text, "the Homebrew formula of the forge indri runs", default="forgejo")
    legacy_service: str = s.setting(s.tailscale_service, "the Tailscale Service that holds the name before",
                                    default="svc:forge")
    legacy_var: str = s.setting(copied_dir, "the brew forge's directory (backed up by borgmatic until now)",
                                default="/opt/homebrew/var/forgejo")
    legacy_data: str = s.setting(copied_dir, "the brew forge's APP_DATA_PATH (copied, never changed)",
                                 default="/opt/homebrew/var/forgejo/data")
    clone_repository: str = s.setting(s.text, "the repository the clone check clones (owner/name.git)",
                                      default="eblume/blumeops.git")
    reimport: str = s.setting(s.one_of(*REIMPORT_CHOICES),
                              "when the claim holds a forge already and the brew forge changed since: refuse, keep "
                              "the cluster's, or replace it (moved aside in the claim)", default="refuse")


SETTINGS = (ForgejoSettings,)

AMENDS = (
    # forge (web) and git (SSH) both carry tag:forge: members' grants reach both
    TAILNET_POLICY.extend((proxy_tag_part(
        "P7", "tag:forge", {"src": ["autogroup:member"], "dst": ["tag:forge"], "ip": ["tcp:443", "tcp:22"]},
        tests=({"src": "<member-user>", "accept": ["tag:forge:443", "tag:forge:22"]},)),)),
    FORGE_REPOSITORY.to(CLUSTER_FORGE),
    RETIRED_SOURCES.extend(lambda settings: (settings.section(ForgejoSettings).legacy_var,)),
)


def build(phase: Phase, handover: Handover) -> None:
    host = handover.take(INDRI)
    tailnet = handover.settings.tailnet
    forgejo = handover.section(ForgejoSettings)
    profile = handover.section(MinikubeSettings).profile
    child = pulumi.ResourceOptions(parent=phase)
    # Before anything stops: a borgmatic archive of the last day holds the brew forge's directory.
    archive = handover.take(BORGMATIC).recent_archive(forgejo.legacy_var.lstrip("/"))
    backup_check = archive.step("forgejo-backup-check").register(host, opts=child)
    move_args = ForgejoMoveArgs(host=host, legacy_data=forgejo.legacy_data, profile=profile,
                                reimport=forgejo.reimport)

    def data_move(stopped: Sequence[pulumi.Resource]) -> Sequence[pulumi.Resource]:
        move = ForgejoMove("forgejo-move", move_args, pulumi.ResourceOptions(parent=phase, depends_on=list(stopped)))
        return [move.copy]

    def verify(chart: Sequence[pulumi.Resource]) -> Sequence[pulumi.Resource]:
        check = ForgejoCloneCheckArgs(host=host, profile=profile, keys_dir=move_args.keys_dir,
                                      clone_key=handover.section(ArgoCDSettings).forge_ssh_private_key,
                                      clone_path=forgejo.clone_repository)
        return [check.step("forgejo-clone-check").register(
            host, secret_values={"CLONE_KEY": check.clone_key},
            opts=pulumi.ResourceOptions(parent=phase, depends_on=list(chart)))]

    app = Forgejo(
        "forgejo",
        ForgejoArgs(
            provider=handover.take(KUBERNETES),
            kept=handover.take(KEPT_STATE),
            proxy_class=handover.take(PROXY_CLASS),
            tailnet=tailnet.name,
            chart_version=forgejo.chart_version,
            identity=ForgejoIdentity(forgejo.secret_key, forgejo.internal_token, forgejo.jwt_secret),
            legacy=legacy_name_claim(handover, BrewService(forgejo.legacy_formula, host.tools.brew),
                                     forgejo.legacy_service, after=(backup_check,)),
            data_move=data_move,
            verify=verify,
            hostname=forgejo.hostname,
            ssh_hostname=forgejo.ssh_hostname,
            storage_size=forgejo.storage_size,
        ),
        child,
    )
    handover.endpoints["forgejo"] = app.root_url
    handover.give(FORGE, app)
    assert app.ingress.cutover is not None and app.ingress.cutover.retirement is not None
    handover.retired[forgejo.legacy_formula] = app.ingress.cutover.retirement.retire
    # ArgoCD and borgmatic follow only once the cluster forge served a clone with the old host keys
    handover.wait_also(ARGOCD_FORGE_WAITS, app.verified)
    handover.wait_also(BORGMATIC_WAITS, app.verified)
