"""Phase 4, Miniflux: Miniflux in the cluster at ``feed`` with the brew Miniflux's last writes carried, and the
name ``pg`` moving from the brew PostgreSQL to ``blumeops-pg``.

Takes indri, the cluster's providers (phase 0), the ProxyClass and ``blumeops-pg`` (phase 1), the import and
borgmatic (phase 3). One ``pulumi up`` from 3 to 4 runs, in dependency order:

1. staged: namespace ``miniflux``, the Secret ``miniflux-db`` (the URL built from the ``miniflux`` role's
   password secret, which phase 1's Cluster now manages: ``PG_APP_ROLES``), the Service;
2. the brew ``miniflux`` stopped and ``svc:feed``'s serve entry cleared (recorded on indri);
3. the final sync: phase 3's import again, in ``final-sync`` mode (the cluster database, untouched since the
   import as its recorded fingerprint proves, replaced from a final dump of the legacy database and verified
   by content; refused with what changed if the cluster database was written since);
4. the Deployment, ready; then ``svc:feed`` released and the Ingress ``feed`` (tagged ``tag:feed``);
5. after the final sync: the brew ``postgresql@18`` stopped and ``svc:pg``'s serve entry cleared, ``svc:pg``
   released, and the LoadBalancer ``pg`` (tagged ``tag:pg``) for blumeops-pg. Before either retirement, a
   check that a borgmatic archive of the last day holds the legacy database's dump: a missing backup stops
   the update before anything stopped;
6. phase 3's borgmatic, once the brew PostgreSQL is retired, dumps only the cluster's database at ``pg``
   (``LEGACY_POSTGRES_SERVING``; ``BORGMATIC_WAITS``), and
   phase 1's LoadBalancer ``k8s-pg`` goes last (``PG_OWN_LOAD_BALANCER``): Pulumi deletes what the program
   no longer declares at the end of the update, after the final sync reached the cluster through it.

Lowering the target to 3 undoes it in reverse: ``k8s-pg`` comes back first; the LoadBalancer ``pg`` goes,
``svc:pg`` is recreated, the brew PostgreSQL and its serve entry are restored; the Ingress goes, ``svc:feed``
is recreated, the Deployment goes, the final sync's undo carries the cluster's writes back into the legacy
database (when the legacy database was not written since the sync; otherwise it keeps both and a dump), and
the brew Miniflux starts again. blumeops-pg and the namespace keep their data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pulumi

from components import health
from components.apps import (
    AppLoadBalancer,
    AppLoadBalancerArgs,
    LegacyClaim,
    Miniflux,
    MinifluxArgs,
    MinifluxDatabase,
)
from components.cluster import ImageRef, ManagedRole
from components.cluster.cloudnative_pg import LOAD_BALANCER_TIMEOUTS, POSTGRES_PORT
from components.host import BorgmaticDatabase, BrewService, LegacyDatabaseImport, LegacyServiceRetirementArgs
from components.tailnet import TailnetNameReleaseArgs
from phases import Handover, Phase
from phases import settings as s
from phases.p0_foundation import INDRI, KEPT_STATE, KUBERNETES, TAILNET_POLICY, proxy_tag_part
from phases.p1_kubernetes import PG_APP_ROLES, PG_HOSTNAME, PG_OWN_LOAD_BALANCER, POSTGRES, PROXY_CLASS
from phases.p3_postgres_data import BORGMATIC, BORGMATIC_WAITS, IMPORT, IMPORT_ARGS, LEGACY_POSTGRES_SERVING

MINIFLUX_REPOSITORY = "ghcr.io/miniflux/miniflux"


@s.section("miniflux")
class MinifluxSettings:
    """Miniflux in the cluster, and the brew Miniflux it replaces."""

    version: str = s.setting(s.version, f"{MINIFLUX_REPOSITORY} image tag (catalogued in policy/images.yaml)",
                             default="2.2.16")
    database_password: pulumi.Output[str] = s.setting(
        s.text, "password of the miniflux role in blumeops-pg (CloudNativePG sets it; Secret miniflux-db uses it)",
        secret=True, required=True, example="<password>")
    hostname: str = s.setting(s.dns_label, "Miniflux's tailnet hostname", default="feed")
    legacy_formula: str = s.setting(s.text, "the Homebrew formula of the Miniflux indri runs", default="miniflux")
    legacy_service: str = s.setting(s.tailscale_service, "the Tailscale Service that holds the name before",
                                    default="svc:feed")


@s.section("pgName")
class PostgresNameSettings:
    """The name ``pg``: the brew PostgreSQL that holds it before, blumeops-pg after."""

    hostname: str = s.setting(s.dns_label, "blumeops-pg's tailnet hostname from this phase on", default="pg")
    legacy_formula: str = s.setting(s.text, "the Homebrew formula of the PostgreSQL indri runs",
                                    default="postgresql@18")
    legacy_service: str = s.setting(s.tailscale_service, "the Tailscale Service that holds the name before",
                                    default="svc:pg")


SETTINGS = (MinifluxSettings, PostgresNameSettings)

AMENDS = (
    # the proxies of feed and pg carry the names' tags: members' grants, and borgmatic on indri reaching pg
    TAILNET_POLICY.extend((
        proxy_tag_part("P4", "tag:feed", {"src": ["autogroup:member"], "dst": ["tag:feed"], "ip": ["tcp:443"]},
                       tests=({"src": "<member-user>", "accept": ["tag:feed:443"]},)),
        proxy_tag_part("P4", "tag:pg", {"src": ["autogroup:member"], "dst": ["tag:pg"], "ip": ["tcp:5432"]},
                       {"src": ["tag:homelab"], "dst": ["tag:pg"], "ip": ["tcp:5432"]},
                       tests=({"src": "tag:homelab", "accept": ["tag:pg:5432"]},)),
    )),
    PG_HOSTNAME.to(lambda settings: settings.section(PostgresNameSettings).hostname),
    PG_OWN_LOAD_BALANCER.to(False),
    PG_APP_ROLES.to(lambda settings: (ManagedRole("miniflux", settings.section(MinifluxSettings).database_password),)),
    LEGACY_POSTGRES_SERVING.to(False),
)

PG_SERVICE = "pg-tailscale"  # the LoadBalancer Service that gives blumeops-pg the name pg


def build(phase: Phase, handover: Handover) -> None:
    host = handover.take(INDRI)
    tailnet = handover.settings.tailnet
    provider = handover.take(KUBERNETES)
    proxy_class = handover.take(PROXY_CLASS)
    cluster = handover.take(POSTGRES)
    imported = handover.take(IMPORT_ARGS)
    first_import = handover.take(IMPORT)
    borgmatic = handover.take(BORGMATIC)
    miniflux = handover.section(MinifluxSettings)
    pg_name = handover.section(PostgresNameSettings)
    child = pulumi.ResourceOptions(parent=phase)

    def release(service: str) -> TailnetNameReleaseArgs:
        return TailnetNameReleaseArgs(host=host, service=service, oauth_client_id=tailnet.oauth_client_id,
                                      oauth_client_secret=tailnet.oauth_client_secret)

    # Before anything stops: a borgmatic archive of the last day holds the legacy database (the nightly dump
    # of phase 3's config). Both retirements wait for it, so a missing backup stops the update with every
    # legacy service still serving; and borgmatic keeps dumping the legacy database until the brew PostgreSQL
    # is retired (BORGMATIC_WAITS), so a retry finds the next nightly archive.
    legacy_dump = BorgmaticDatabase(imported.source.database, imported.source.host, imported.source.port)
    archive = borgmatic.recent_archive(legacy_dump.archive_path)
    backup_check = archive.step("legacy-postgres-backup-check").register(host, opts=child)

    synced: list[LegacyDatabaseImport] = []

    def final_sync(stopped: Sequence[pulumi.Resource]) -> Sequence[pulumi.Resource]:
        """Phase 3's import again, after the brew Miniflux stopped writing: its last writes reach the cluster."""
        step = LegacyDatabaseImport(
            f"{imported.source.database}-final-sync",
            dataclasses.replace(imported, mode="final-sync"),
            pulumi.ResourceOptions(parent=phase, depends_on=[*stopped, first_import]),
        )
        synced.append(step)
        return [step]

    app = Miniflux(
        "miniflux",
        MinifluxArgs(
            provider=provider,
            kept=handover.take(KEPT_STATE),
            proxy_class=proxy_class,
            tailnet=tailnet.name,
            database=MinifluxDatabase(f"{cluster.rw_service}.{cluster.namespace_name}.svc.cluster.local",
                                      name=imported.target.database, user=imported.owner),
            database_password=miniflux.database_password,
            database_ready=(cluster.cluster,),
            image=ImageRef(MINIFLUX_REPOSITORY, miniflux.version),
            hostname=miniflux.hostname,
            legacy=LegacyClaim(
                retirement=LegacyServiceRetirementArgs(
                    host=host, service=BrewService(miniflux.legacy_formula, host.tools.brew),
                    serve_service=miniflux.legacy_service, after=(backup_check,)),
                release=release(miniflux.legacy_service),
            ),
            final_sync=final_sync,
        ),
        child,
    )
    handover.endpoints["miniflux"] = app.base_url

    # The name pg: the brew PostgreSQL stops only after the final sync read it and after the backup check
    # (the final sync's dump stays in pgImport.dumpDir as well).
    address = f"{pg_name.hostname}.{health.TAILNET}"
    pg = AppLoadBalancer(
        "pg",
        AppLoadBalancerArgs(
            provider=provider,
            namespace=cluster.namespace_name,
            hostname=pg_name.hostname,
            service_name=PG_SERVICE,
            selector=cluster.primary_selector,
            port=POSTGRES_PORT,
            proxy_class=proxy_class,
            legacy=LegacyClaim(
                retirement=LegacyServiceRetirementArgs(
                    host=host, service=BrewService(pg_name.legacy_formula, host.tools.brew),
                    serve_service=pg_name.legacy_service, after=(backup_check,)),
                release=release(pg_name.legacy_service),
            ),
            ready=(cluster.cluster, *synced),
            tags=("tag:pg",),
            checks=(health.PostgresEndpoint(
                f"postgres {pg_name.hostname}:{POSTGRES_PORT}", address, POSTGRES_PORT,
                f"`kubectl -n {cluster.namespace_name} get cluster {cluster.cluster_name}` and the LoadBalancer "
                f"{PG_SERVICE}'s proxy in namespace tailscale; a name taken as {pg_name.hostname}-1 means "
                f"{pg_name.legacy_service} was not released"),),
            restored_checks=(health.PostgresEndpoint(
                f"postgres {pg_name.hostname}:{POSTGRES_PORT} (legacy)", address, POSTGRES_PORT,
                f"brew services info {pg_name.legacy_formula} on indri and `tailscale serve status`"),),
            custom_timeouts=LOAD_BALANCER_TIMEOUTS,
        ),
        child,
    )
    assert pg.cutover is not None and pg.cutover.retirement is not None
    handover.wait_also(BORGMATIC_WAITS, [pg.cutover.retirement.retire])
    assert app.ingress.cutover is not None and app.ingress.cutover.retirement is not None
    handover.retired[miniflux.legacy_formula] = app.ingress.cutover.retirement.retire
    handover.retired[pg_name.legacy_formula] = pg.cutover.retirement.retire
