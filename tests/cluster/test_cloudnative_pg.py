"""CloudNativePG and blumeops-pg as phase 1 registers them."""

from __future__ import annotations

from phase_runner import Run


def test_operator_chart_is_pinned(phase1: Run) -> None:
    inputs = phase1.named("cloudnative-pg-chart")["inputs"]
    assert inputs["chart"] == "cloudnative-pg"
    assert inputs["repositoryOpts"] == {"repo": "https://cloudnative-pg.github.io/charts"}
    assert inputs["version"] == "0.29.0"
    assert inputs["namespace"] == "cnpg-system"
    assert inputs["values"]["image"] == {"repository": "ghcr.io/cloudnative-pg/cloudnative-pg", "tag": "1.30.0"}
    assert inputs["values"]["crds"] == {"create": True}


def test_cluster_spec_has_every_field_of_the_plan(phase1: Run) -> None:
    cluster = phase1.named("blumeops-pg-cluster")
    inputs = cluster["inputs"]
    assert cluster["type"] == "kubernetes:postgresql.cnpg.io/v1:Cluster"
    assert inputs["metadata"] == {"name": "blumeops-pg", "namespace": "databases"}
    assert inputs["spec"] == {
        "instances": 1,
        "imageName": "ghcr.io/cloudnative-pg/postgresql:18-standard-trixie",
        "storage": {"size": "10Gi", "storageClass": "standard"},
        "bootstrap": {"initdb": {"database": "miniflux", "owner": "miniflux"}},
        "managed": {"roles": [
            {"name": "eblume", "ensure": "present", "login": True, "superuser": True, "createdb": True,
             "createrole": True, "inherit": True, "connectionLimit": -1,
             "passwordSecret": {"name": "blumeops-pg-eblume"}},
            {"name": "borgmatic", "ensure": "present", "login": True, "superuser": False, "createdb": False,
             "createrole": False, "inherit": True, "connectionLimit": -1, "inRoles": ["pg_read_all_data"],
             "passwordSecret": {"name": "blumeops-pg-borgmatic"}},
        ]},
        "postgresql": {
            "parameters": {"max_connections": "50", "shared_buffers": "128MB",
                           "password_encryption": "scram-sha-256"},
            "pg_hba": ["host all all 0.0.0.0/0 scram-sha-256", "host all all ::/0 scram-sha-256"],
        },
        "resources": {"requests": {"memory": "256Mi", "cpu": "100m"}, "limits": {"memory": "1Gi", "cpu": "500m"}},
    }
    assert "backup" not in inputs["spec"]  # no object store: backups are pg_dump from outside


def test_cluster_is_protected(phase1: Run) -> None:
    assert phase1.named("blumeops-pg-cluster")["options"]["protect"] is True


def test_role_secrets_are_basic_auth_from_config(phase1: Run) -> None:
    for role, key in (("eblume", "postgres.eblumePassword"), ("borgmatic", "postgres.borgmaticPassword")):
        secret = phase1.named(f"blumeops-pg-{role}")
        assert secret["inputs"]["type"] == "kubernetes.io/basic-auth"
        assert secret["inputs"]["metadata"] == {"name": f"blumeops-pg-{role}", "namespace": "databases"}
        assert secret["revealed"]["stringData"] == {"username": role,
                                                    "password": phase1.fake_secrets[f"blumeops:{key}"]}


def test_tailscale_load_balancer_selects_the_primary(phase1: Run) -> None:
    service = phase1.named("blumeops-pg-tailscale")
    inputs = service["inputs"]
    assert inputs["metadata"]["name"] == "blumeops-pg-tailscale"
    assert inputs["metadata"]["namespace"] == "databases"
    assert inputs["metadata"]["annotations"]["tailscale.com/hostname"] == "k8s-pg"
    assert inputs["metadata"]["labels"]["tailscale.com/proxy-class"] == "default"
    assert inputs["spec"]["type"] == "LoadBalancer"
    assert inputs["spec"]["loadBalancerClass"] == "tailscale"
    assert inputs["spec"]["selector"] == {"cnpg.io/cluster": "blumeops-pg", "cnpg.io/instanceRole": "primary"}
    assert [(p["port"], p["targetPort"], p["protocol"]) for p in inputs["spec"]["ports"]] == [(5432, 5432, "TCP")]


def test_a_hostname_change_replaces_the_load_balancer(phase1: Run) -> None:
    service = phase1.named("blumeops-pg-tailscale")
    assert service["inputs"]["metadata"]["annotations"]["tailscale.com/hostname"] == "k8s-pg"
    assert service["options"]["replaceOnChanges"] == ['metadata.annotations["tailscale.com/hostname"]']
    assert service["options"]["deleteBeforeReplace"] is True


def test_at_4_the_name_is_pg_and_phase_1_serves_no_k8s_pg(phase1_at_4: Run) -> None:
    """Phase 4 gives blumeops-pg the name pg with a LoadBalancer of its own (created after svc:pg is released):
    phase 1's k8s-pg is not declared any more, and the cluster manages the miniflux role."""
    assert not [r for r in phase1_at_4.resources if r["name"] == "blumeops-pg-tailscale"]
    assert phase1_at_4.exports["endpoints"]["postgres"] == "postgresql://pg.tail8d86e.ts.net:5432"
    roles = phase1_at_4.named("blumeops-pg-cluster")["inputs"]["spec"]["managed"]["roles"]
    assert [role["name"] for role in roles] == ["eblume", "borgmatic", "miniflux"]
    # CloudNativePG resets the owner's password from the application secret on every instance restart: that
    # secret is the managed role's, so the program's password is the only one
    initdb = phase1_at_4.named("blumeops-pg-cluster")["inputs"]["spec"]["bootstrap"]["initdb"]
    assert initdb == {"database": "miniflux", "owner": "miniflux", "secret": {"name": "blumeops-pg-miniflux"}}
    secret = phase1_at_4.named("blumeops-pg-miniflux")
    assert secret["inputs"]["type"] == "kubernetes.io/basic-auth" and secret["inputs"]["stringData"] == "[secret]"


def test_the_load_balancer_waits_for_the_cluster_long_enough(phase1: Run) -> None:
    """Pulumi's Service await wants a Pod behind the selector: the primary exists only after the Cluster, and
    its first start pulls the image through zot and runs initdb (more than the provider's 10 minutes)."""
    service = phase1.named("blumeops-pg-tailscale")
    assert phase1.named("blumeops-pg-cluster")["urn"] in service["options"]["dependsOn"]
    timeouts = service["options"]["customTimeouts"]
    assert timeouts["create"] == timeouts["update"] == "20m"
