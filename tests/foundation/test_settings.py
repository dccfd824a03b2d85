"""Settings: each bad-config case gives its own message naming the key and the fix; a good config loads."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pulumi
import pulumi.runtime.config as runtime_config
import pytest

from ops.stack import load_stack
from phases import settings

GOOD_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRlc3Qta2V5LWZvci1pbmRyaS10ZXN0LWtleS1mb3Ih"


@pytest.fixture(autouse=True)
def _isolated_config() -> Iterator[None]:
    saved_config = dict(runtime_config.CONFIG.get())
    saved_secrets = set(runtime_config._SECRET_KEYS.get())
    yield
    runtime_config.set_all_config(saved_config, list(saved_secrets))


def base_config(**overrides: str) -> dict[str, str]:
    config = {
        "blumeops:phase": "0",
        "blumeops:indri.hostKey": GOOD_KEY,
        "blumeops:tailnet.admins": '["admin@example.com"]',
        "blumeops:tailnet.members": '["member@example.com"]',
        "blumeops:tailnet.oauthClientId": "client-id",
        "blumeops:tailnet.oauthClientSecret": "client-secret",
    }
    config.update({f"blumeops:{key.replace('__', '.')}": value for key, value in overrides.items()})
    return config


def load(config: Mapping[str, str], secrets: tuple[str, ...] | None = None) -> settings.Settings:
    if secrets is None:
        secrets = tuple(
            key for key in config if key.removeprefix("blumeops:") in settings.SPEC_BY_KEY
            and settings.SPEC_BY_KEY[key.removeprefix("blumeops:")].secret
        )
    runtime_config.set_all_config(dict(config), list(secrets))
    return settings.load(project="blumeops", stack="test")


def problems(config: Mapping[str, str], secrets: tuple[str, ...] | None = None) -> list[str]:
    with pytest.raises(settings.SettingsError) as caught:
        load(config, secrets)
    return list(caught.value.problems)


def test_good_config_loads_with_defaults_and_overrides() -> None:
    loaded = load(base_config(zot__port="5051", **{"tools.minikube": "/usr/local/bin/minikube"}))
    assert loaded.phase == "0"
    assert loaded.phases == ("0",)
    assert loaded.indri.host_key == GOOD_KEY
    assert loaded.indri.tools.minikube == "/usr/local/bin/minikube"
    assert loaded.zot.port == 5051
    assert loaded.zot.binary == "/Users/erichblume/code/3rd/zot/bin/zot-darwin-arm64"
    assert {u.registry for u in loaded.zot.upstreams} >= {"docker.io", "ghcr.io", "quay.io"}
    assert loaded.minikube.cpus == 6 and loaded.minikube.memory_mb == 11264
    assert loaded.tailnet.admins == ("admin@example.com",)
    assert isinstance(loaded.tailnet.oauth_client_secret, pulumi.Output)


def test_the_indri_stack_file_round_trips() -> None:
    stack = load_stack("indri")
    loaded = load(stack.config, tuple(stack.secret_keys))
    assert loaded.phase == stack.config["blumeops:phase"]
    assert loaded.indri.user == "erichblume" and loaded.indri.uid == 501
    assert loaded.zot.config_path == "/Users/erichblume/.config/zot/config.json"
    assert loaded.minikube.disk_size == "200g"


def test_a_full_ssh_keyscan_line_is_accepted() -> None:
    loaded = load(base_config(**{"indri.hostKey": f"indri {GOOD_KEY}"}))
    assert loaded.indri.host_key == GOOD_KEY


def test_unknown_phase_id() -> None:
    [problem] = problems(base_config(phase="5.2"))
    assert problem.startswith("blumeops:phase '5.2' is not a phase id")
    assert "5.1" in problem and "pulumi config set blumeops:phase" in problem


def test_relative_and_tilde_tool_paths() -> None:
    found = problems(base_config(**{"tools.kubectl": "bin/kubectl", "zot.binary": "~/zot"}))
    assert any(p.startswith("blumeops:tools.kubectl 'bin/kubectl' is relative") for p in found)
    assert any(p.startswith("blumeops:zot.binary '~/zot' uses ~") for p in found)
    assert all("pulumi config set" in p for p in found)


def test_missing_host_key_names_ssh_keyscan() -> None:
    config = base_config()
    del config["blumeops:indri.hostKey"]
    [problem] = problems(config)
    assert problem.startswith("blumeops:indri.hostKey is missing")
    assert "ssh-keyscan -t ed25519 indri" in problem


@pytest.mark.parametrize(("key", "why"), [
    ("not a key", "expected '<type> <base64>'"),
    ("ssh-ed25519 AAAA%%%%", "not valid base64"),
    ("ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ==", "does not belong to a ssh-ed25519 key"),
])
def test_malformed_host_key(key: str, why: str) -> None:
    [problem] = problems(base_config(**{"indri.hostKey": key}))
    assert problem.startswith("blumeops:indri.hostKey expected '<type> <base64>'")
    assert why in problem


@pytest.mark.parametrize("port", ["http", "0", "70000", "50.5"])
def test_malformed_port(port: str) -> None:
    [problem] = problems(base_config(zot__port=port))
    assert problem.startswith(f"blumeops:zot.port {port!r}" if not port.isdigit() else "blumeops:zot.port ")
    assert "pulumi config set blumeops:zot.port" in problem


def test_secret_missing_for_a_phase_that_needs_it() -> None:
    config = base_config(phase="1")
    found = problems(config)
    missing = {p.split(" ", 1)[0] for p in found if " is missing" in p}
    assert {"blumeops:postgres.eblumePassword", "blumeops:argocd.forgeSshPrivateKey",
            "blumeops:operator.oauthClientSecret"} <= missing
    secret_fix = next(p for p in found if p.startswith("blumeops:postgres.eblumePassword"))
    assert "pulumi config set --secret blumeops:postgres.eblumePassword" in secret_fix


def test_operator_oauth_client_not_needed_when_the_program_creates_it() -> None:
    found = problems(base_config(phase="1", **{"operator.createOauthClient": "true"}))
    assert not any(p.startswith("blumeops:operator.oauthClient") for p in found)


def test_secret_stored_in_plain_text_is_refused() -> None:
    [problem] = problems(base_config(), secrets=())
    assert problem.startswith("blumeops:tailnet.oauthClientSecret is stored in plain text")
    assert "--secret" in problem


def test_unknown_key_suggests_the_right_one() -> None:
    [problem] = problems(base_config(**{"zot.Port": "5050"}))
    assert problem.startswith("blumeops:zot.Port is not a blumeops setting: did you mean blumeops:zot.port?")
    assert "pulumi config rm blumeops:zot.Port" in problem


def test_blocked_phase_in_the_chain_names_the_blocker() -> None:
    [problem] = problems(base_config(blockedPhases='{"0": "tailnet migration pending"}'))
    assert "phase 0 is blocked (tailnet migration pending)" in problem


def test_every_problem_is_reported_at_once() -> None:
    config = base_config(zot__port="x", **{"tools.docker": "docker", "bogus.key": "1"})
    del config["blumeops:indri.hostKey"]
    with pytest.raises(settings.SettingsError) as caught:
        load(config)
    assert len(caught.value.problems) == 4
    message = str(caught.value)
    assert message.startswith("the stack config has 4 problems:")
    assert message.count("\n  - ") == 4


def test_bad_config_stops_the_program_before_any_resource() -> None:
    from ops import harness
    from ops import plan as offline_plan

    stack = load_stack("indri")
    stack.config["blumeops:tools.kubectl"] = "kubectl"
    stack.config["blumeops:zot.port"] = "AirPlay"
    with pytest.raises(harness.ProgramError) as caught:
        offline_plan.build_plan(stack)
    assert caught.value.registered == 0
    assert str(caught.value).startswith("the stack config has 2 problems:")
    assert "blumeops:tools.kubectl 'kubectl' is relative" in str(caught.value)


def test_a_plain_setting_stored_as_a_secret_is_refused_without_echoing_it() -> None:
    config = base_config(**{"tailnet.admins": '["hidden-login@example.com"]'})
    [problem] = problems(config, secrets=("blumeops:tailnet.oauthClientSecret", "blumeops:tailnet.admins"))
    assert problem.startswith("blumeops:tailnet.admins is stored as a secret, but it is not one")
    assert "without --secret" in problem and "hidden-login" not in problem


def test_every_spec_has_a_parseable_default_or_is_required_or_optional() -> None:
    for spec in settings.SPECS:
        if spec.default is not None:
            settings._parse_default(spec)
        if spec.stand_in is not None:
            spec.parse(spec.stand_in)
        assert spec.key.split(".")[0], spec.key
