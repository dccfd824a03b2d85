"""``ops plan`` sends every resource through the served policy pack; mandatory violations refuse the plan."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ops import plan as offline_plan
from ops.stack import ROOT, load_stack

POLICY_DIR = ROOT / "policy"
if str(POLICY_DIR) not in sys.path:
    sys.path.insert(0, str(POLICY_DIR))

from rules.catalog import default_catalog, parse_image  # type: ignore[import-not-found]  # noqa: E402
from rules.workloads import resource_images  # type: ignore[import-not-found]  # noqa: E402

BAD_PROGRAM = '''
import pulumi
import pulumi_kubernetes as k8s

class LaunchAgent(pulumi.ComponentResource):
    def __init__(self, name, props):
        super().__init__("blumeops:host:LaunchAgent", name, props, None)

LaunchAgent("zot-agent", {
    "label": "mcquack.eblume.zot",
    "plistPath": "/Users/erichblume/Library/LaunchAgents/mcquack.eblume.zot.plist",
    "programArguments": ["~/code/3rd/zot/bin/zot-darwin-arm64", "serve", "/Users/erichblume/.config/zot/config.json"],
    "environmentVariables": {},
    "standardOutPath": "/Users/erichblume/Library/Logs/mcquack.zot.out.log",
    "standardErrorPath": "/Users/erichblume/Library/Logs/mcquack.zot.err.log",
    "runAtLoad": True,
    "keepAlive": True,
})
provider = k8s.Provider("cluster", kubeconfig="{}")
k8s.apps.v1.Deployment(
    "legacy",
    metadata={"name": "legacy", "namespace": "default"},
    spec={"selector": {"matchLabels": {"app": "legacy"}},
          "template": {"metadata": {"labels": {"app": "legacy"}},
                       "spec": {"containers": [{"name": "web", "image": "docker.io/library/amd64only:1.0"}]}}},
    opts=pulumi.ResourceOptions(provider=provider),
)
'''


@pytest.fixture(scope="module")
def bad_plan(tmp_path_factory: pytest.TempPathFactory) -> offline_plan.Plan:
    program: Path = tmp_path_factory.mktemp("bad-program")
    (program / "__main__.py").write_text(BAD_PROGRAM)
    return offline_plan.build_plan(load_stack("indri"), program_dir=program)


def test_a_tilde_path_and_an_unlisted_image_fail_with_readable_messages(bad_plan) -> None:  # type: ignore[no-untyped-def]
    report = offline_plan.check_policy(bad_plan)
    assert not report.ok
    by_policy: dict[str, list[str]] = {}
    for violation in report.mandatory:
        by_policy.setdefault(violation.policy, []).append(violation.message)
    agent = " ".join(by_policy["absolute-launchagent-paths"])
    assert "~/code/3rd/zot/bin/zot-darwin-arm64" in agent and "mcquack.eblume.zot" in agent
    image = " ".join(by_policy["arm64-images"])
    assert "docker.io/library/amd64only:1.0" in image and "python -m ops images verify" in image


def test_the_programs_own_plan_passes_the_pack(indri_plan) -> None:  # type: ignore[no-untyped-def]
    report = offline_plan.check_policy(indri_plan())
    assert report.resources_analyzed == len(indri_plan().resources)
    assert {p.name for p in report.policies} >= {"arm64-images", "absolute-launchagent-paths"}
    assert report.ok, [f"{v.policy}: {v.message}" for v in report.mandatory]


def test_secrets_reach_the_pack_marked_as_the_engine_sends_them(indri_plan) -> None:  # type: ignore[no-untyped-def]
    plan = indri_plan()
    resources = offline_plan.analyzer_resources(plan.run)
    provider = next(r for r in resources if r.type == "pulumi:providers:tailscale")
    secret = provider.properties["oauthClientSecret"]
    assert secret["4dabf18193072939515e22adb298388d"] == "1b47061264138c4ac30d75fd1eb44270"
    assert secret["value"] == plan.fake_secrets["blumeops:tailnet.oauthClientSecret"]


def test_a_policy_message_repeating_a_secret_fails_the_plan(indri_plan, tmp_path) -> None:  # type: ignore[no-untyped-def]
    plan = indri_plan()
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "__main__.py").write_text(
        "from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy\n"
        "def tell(args, report):\n"
        "    if args.resource_type == 'pulumi:providers:tailscale':\n"
        "        report('secret is ' + str(args.props['oauthClientSecret']))\n"
        "PolicyPack('blabber', [ResourceValidationPolicy(name='blabber', description='says too much',\n"
        "    validate=tell, enforcement_level=EnforcementLevel.ADVISORY)])\n"
    )
    with pytest.raises(offline_plan.PlanError, match=r"repeat secret values of: blumeops:tailnet\.oauthClientSecret"):
        offline_plan.check_policy(plan, policy_dir=pack)


def _images(plan: offline_plan.Plan) -> set[str]:
    found: set[str] = set()
    for resource in plan.resources:
        for use in resource_images(resource["type"], resource["inputs"]):
            found.add(use.image)
    return found


def test_every_image_the_program_uses_is_in_images_yaml(indri_plan) -> None:  # type: ignore[no-untyped-def]
    import phases

    catalog = default_catalog()
    images: set[str] = set()
    for spec in phases.REGISTRY:
        if spec.implemented:
            images |= _images(indri_plan(spec.id))
    assert len(images) >= 6, images  # the charts' and custom resources' images are found at all
    for image in sorted(images):
        assert catalog.lookup(parse_image(image)) is not None, f"{image} is not in policy/images.yaml"


@pytest.mark.slow  # runs the whole CLI (or Helm) again in a subprocess
def test_cli_plan_refuses_nothing_for_the_program_and_prints_the_verdict() -> None:
    result = subprocess.run([sys.executable, "-m", "ops", "plan", "--stack", "indri"],
                            cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "policy: passed" in result.stdout


def test_the_packs_mirrored_registries_are_the_ones_zot_syncs(indri_plan) -> None:  # type: ignore[no-untyped-def]
    import yaml

    import phases
    from phases import settings

    mirrored = set(yaml.safe_load((POLICY_DIR / "images.yaml").read_text())["registries"]["mirrored"])
    upstreams = {u.registry for u in settings.parse_default(phases.setting_specs()["zot.upstreams"])}
    assert mirrored == upstreams | {"registry.tail8d86e.ts.net"}
    zot_config = indri_plan().artifacts["host/zot/config.json"]
    for registry in upstreams:
        assert f'"/{registry}"' in zot_config, registry


def test_cli_plan_exits_1_on_a_mandatory_violation(bad_plan, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from ops import __main__ as cli

    monkeypatch.setattr(cli.offline_plan, "build_plan", lambda stack, **hooks: bad_plan)
    monkeypatch.setattr(cli.offline_plan, "write_artifacts", lambda plan, directory: None)
    assert cli.main(["plan", "--stack", "indri"]) == 1
    captured = capsys.readouterr()
    assert "mandatory policy violation(s); the plan is refused" in captured.err
    assert "absolute-launchagent-paths" in captured.out and "~/code/3rd/zot/bin/zot-darwin-arm64" in captured.out
