"""Settings: each bad-config case gives its own message naming the key and the fix; a good config loads."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pulumi
import pulumi.runtime.config as runtime_config
import pytest

import phases
from ops.stack import load_stack
from phases import settings
from phases.p0_foundation import MinikubeSettings, ZotSettings

SPECS = phases.setting_specs()

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
            key for key in config if key.removeprefix("blumeops:") in SPECS
            and SPECS[key.removeprefix("blumeops:")].secret
        )
    runtime_config.set_all_config(dict(config), list(secrets))
    return settings.load(phases.declared_settings(), project="blumeops", stack="test")


def problems(config: Mapping[str, str], secrets: tuple[str, ...] | None = None) -> list[str]:
    with pytest.raises(settings.SettingsError) as caught:
        load(config, secrets)
    return list(caught.value.problems)


def test_good_config_loads_with_defaults_and_overrides() -> None:
    loaded = load(base_config(zot__port="5051", **{"tools.minikube": "/usr/local/bin/minikube"}))
    assert loaded.phase == "0"
    assert loaded.phases == ("0",)
    assert loaded.indri.host_key == GOOD_KEY
    assert loaded.tools.minikube == "/usr/local/bin/minikube"
    zot = loaded.section(ZotSettings)
    assert zot.port == 5051
    assert zot.binary == "/Users/erichblume/code/3rd/zot/bin/zot-darwin-arm64"
    assert {u.registry for u in zot.upstreams} >= {"docker.io", "ghcr.io", "quay.io"}
    minikube = loaded.section(MinikubeSettings)
    assert minikube.cpus == 6 and minikube.memory_mb == 11264
    assert loaded.tailnet.admins == ("admin@example.com",)
    assert isinstance(loaded.tailnet.oauth_client_secret, pulumi.Output)


def test_the_indri_stack_file_round_trips() -> None:
    stack = load_stack("indri")
    loaded = load(stack.config, tuple(stack.secret_keys))
    assert loaded.phase == stack.config["blumeops:phase"]
    assert loaded.indri.user == "erichblume" and loaded.indri.uid == 501
    assert loaded.section(ZotSettings).config_path == "/Users/erichblume/.config/zot/config.json"
    assert loaded.section(MinikubeSettings).disk_size == "200g"


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


@pytest.mark.parametrize("value", [
    "/usr/bin/touch /tmp/x;/bin/bash",  # a command, not a path: sshd would have run it
    "/opt/my tools/bash", "/bin/bash -x", "/bin/ba$h", "/bin/`id`", "/bin/'bash'", "/bin/bash|x", "/bin/a&b",
    "/bin/", "//bin/bash", "/",
])
def test_a_tool_path_is_a_plain_path_of_a_program(value: str) -> None:
    [problem] = problems(base_config(**{"tools.bash": value}))
    assert problem.startswith(f"blumeops:tools.bash {value!r}")
    assert "pulumi config set" in problem
    assert any(word in problem for word in ("plain path of a program", "directory", "relative", "uses ~"))


def test_ordinary_tool_paths_are_accepted() -> None:
    loaded = load(base_config(**{"tools.bash": "/opt/homebrew/bin/bash",
                                 "tools.kubectl": "/usr/local/bin/kubectl-1.35_arm64+x"}))
    assert loaded.tools.bash == "/opt/homebrew/bin/bash" and loaded.tools.kubectl.endswith("_arm64+x")


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
    assert "python -m ops settings" in problem
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
    from ops import plan as offline_plan
    from ops.engine import harness

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


def test_every_setting_is_exactly_one_of_default_required_or_optional_and_its_declaration_holds() -> None:
    for spec in SPECS.values():
        kinds = [spec.default is not None, spec.required, spec.default is None and not spec.required]
        assert kinds.count(True) == 1, spec.key
        if spec.default is not None:
            assert settings.parse_default(spec) is not None, f"{spec.key}: its default parses to nothing"
            assert not spec.secret, f"{spec.key}: a secret with a default would ship the secret in the code"
        if spec.stand_in is not None:
            assert spec.required and not spec.secret, f"{spec.key}: stand-ins are for required, non-secret facts"
            assert spec.parse(spec.stand_in) is not None
        if spec.unless is not None:
            assert spec.required and SPECS[spec.unless].parse is settings.boolean, spec.key
        assert spec.key.split(".")[0] and spec.section, spec.key
    assert SPECS["indri.hostKey"].required and SPECS["zot.dockerHubToken"].secret
    assert SPECS["zot.dockerHubUser"].default is None and not SPECS["zot.dockerHubUser"].required


def test_a_section_beyond_the_target_is_not_loaded_and_says_so() -> None:
    from phases.p1_kubernetes import PostgresSettings

    loaded = load(base_config())
    with pytest.raises(settings.SettingsError, match=r"section postgres .* not loaded for target phase 0"):
        loaded.section(PostgresSettings)


# --- hostile values (issue 9): each rejection names the key and the rule, citing the tool's own rule ----


@pytest.mark.parametrize(("key", "value", "why"), [
    ("minikube.cpus", "1", "minikube requires at least 2 CPUs"),
    ("minikube.memoryMb", "1024", "minikube's usable minimum is 1800 MB"),
    ("minikube.diskSize", "1m", "below minikube's minimum disk size of 2000MB"),
    ("minikube.profile", "a..b", "not a minikube profile name (minikube's rule"),
    ("minikube.profile", "x", "more than one character"),
    ("minikube.profile", "delete", "command keywords"),
    ("postgres.storageClass", "Standard", "RFC 1123 label"),
    ("tailnet.name", "Tail_8d86e.ts.net", "not a DNS name"),
    ("tailnet.name", "localhost", "not a tailnet DNS name"),
    ("tailnet.indriDevice", "indri..ts.net", "not a DNS name"),
    ("tailnet.legacyServiceTags", '["grafana"]', "is not a Tailscale tag"),
    ("tailnet.legacyServiceTags", '["tag:9lives"]', "starting with a letter"),
    ("operator.chartVersion", "v1.102.3", "leading 'v'"),
    ("argocd.chartVersion", "latest", "not a pinned chart version"),
    ("zot.upstreams", '{"docker.io\\n": "https://registry-1.docker.io"}', "not a registry host name"),
    ("zot.upstreams", '{"docker.io": "https://registry-1.docker.io\\nX"}', "one https:// URL on one line"),
    ("zot.upstreams", '{"docker.io": "https://me:pw@registry-1.docker.io"}', "carries credentials"),
    ("zot.upstreams", '{"docker.io": "http://registry-1.docker.io"}', "must be an https:// URL"),
    ("indri.hostKey", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", "no (or incomplete) key material"),
    ("zot.dataDir", "/Users/erichblume/z\u0000ot", "control character"),
    ("zot.dataDir", '[".."]', "is a list, expected one absolute path"),
    ("zot.dataDir", "/Users/erichblume/../root", "contains '..'"),
    ("tools.kubectl", "/opt/home:brew/bin/kubectl", "separates entries of PATH"),
])
def test_hostile_values_are_refused_naming_the_key_and_the_rule(key: str, value: str, why: str) -> None:
    import json

    raw = json.loads(f'"{value}"') if "\\u" in value else value
    config = base_config(phase="1", **{key: raw})
    found = [p for p in problems_at_target_1(config) if p.startswith(f"blumeops:{key} ")]
    assert len(found) == 1, found
    assert why in found[0], found[0]
    assert "pulumi config set blumeops:" in found[0]


def problems_at_target_1(config: dict[str, str]) -> list[str]:
    config.update({
        "blumeops:operator.oauthClientId": "id", "blumeops:operator.oauthClientSecret": "s",
        "blumeops:argocd.forgeSshPrivateKey": "k", "blumeops:argocd.forgeHostKey": GOOD_KEY,
        "blumeops:postgres.eblumePassword": "p", "blumeops:postgres.borgmaticPassword": "b",
    })
    return problems(config)


def test_a_phase_with_blanks_is_one_clear_problem_not_ten_missing_keys() -> None:
    stack = load_stack("indri")
    stack.config["blumeops:phase"] = " 1"
    from ops import plan as offline_plan
    from ops.engine import harness

    with pytest.raises(harness.ProgramError) as caught:
        offline_plan.build_plan(stack)
    message = str(caught.value)
    assert message.startswith("the stack config has 1 problem:"), message
    assert "blumeops:phase ' 1' is not a phase id" in message


def test_keys_of_other_namespaces_are_refused_with_what_to_use_instead() -> None:
    config = base_config(**{})
    config["tailscale:oauthClientSecret"] = "in-plain-text"
    config["kubernetes:context"] = "minikube"
    config["pulumi:disable-default-providers"] = '["*"]'
    found = problems(config)
    assert len(found) == 2
    tailscale = next(p for p in found if p.startswith("tailscale:oauthClientSecret"))
    assert "blumeops:tailnet.oauthClientSecret" in tailscale
    assert "pulumi config rm tailscale:oauthClientSecret" in tailscale
    assert "in-plain-text" not in tailscale
    assert any(p.startswith("kubernetes:context is not read by this program") for p in found)


def test_a_nested_key_from_config_set_path_says_to_set_flat_keys() -> None:
    config = base_config()
    config["blumeops:zot"] = '{"port": 5051}'
    [problem] = problems(config)
    assert problem.startswith("blumeops:zot is a nested map, as `pulumi config set --path` writes it")
    assert "pulumi config rm blumeops:zot" in problem and "pulumi config set blumeops:zot.port <value>" in problem


def test_a_key_written_twice_in_the_stack_file_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ops.stack import ROOT, StackError

    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.twice.yaml").write_text(
        'config:\n  blumeops:phase: "0"\n  blumeops:zot.port: "5050"\n  blumeops:zot.port: "5051"\n')
    with pytest.raises(StackError, match=r"'blumeops:zot.port' is written twice"):
        load_stack("twice", root=tmp_path)


def test_an_invalid_secret_is_reported_without_its_value() -> None:
    config = base_config(**{"minikube.kubeconfig": "apiVersion: v1\x00 hidden-kubeconfig-value"})
    [problem] = problems(config)
    assert problem.startswith("blumeops:minikube.kubeconfig is not valid (its value is not repeated here)")
    assert "hidden-kubeconfig-value" not in problem


def test_the_stack_file_sets_only_what_differs_from_the_defaults() -> None:
    stack = load_stack("indri")
    for key, value in stack.config.items():
        if key in stack.substituted or key == "blumeops:phase":
            continue
        spec = SPECS[key.removeprefix("blumeops:")]
        assert spec.default is None or settings.parse_default(spec) != spec.parse(value), \
            f"{key} restates its default: remove it from Pulumi.indri.yaml"


@pytest.mark.parametrize(("key", "value", "why"), [
    ("zot.configPath", "/Users/erichblume/.ssh/authorized_keys", "inside .ssh"),
    ("borgmatic.pgpassPath", "/Users/erichblume/.zshrc", "shell's startup file"),
    ("borgmatic.configPath", "/etc/borgmatic.yaml", "under /etc"),
    ("pgImport.dumpDir", "/", "other programs share"),
    ("pgImport.dumpDir", "/tmp", "other programs share"),
    ("pgImport.dumpDir", "/Users/erichblume", "a home directory itself"),
    ("zot.dataDir", "/Users/erichblume/.gnupg/zot", "inside .gnupg"),
    ("metrics.scriptDir", "/usr/bin", "under /usr"),
    ("tailnet.name", "evil.example.com", "ends in .ts.net"),
])
def test_a_step_is_never_pointed_at_the_operators_own_files(key: str, value: str, why: str) -> None:
    """Paths a step writes, replaces or chmods (0700 for the dump directory) and the tailnet's name."""
    found = problems(base_config(**{key: value}))  # a later phase's key is validated at any target
    matching = [p for p in found if p.startswith(f"blumeops:{key} ")]
    assert matching and why in matching[0], found
    assert "pulumi config set" in matching[0]


def test_the_default_paths_are_the_programs_own() -> None:
    loaded = load(base_config(**{"zot.dataDir": "/Users/erichblume/zot-data", "metrics.scriptDir": "/usr/local/bin"}))
    assert loaded.phase == "0"


# --- the replacement of a legacy minikube profile (issue 22, phase 5.1 item 3) --------------------------

ARCHIVE = "indri-2026-01-21T02:00:03.512006"


def test_the_replacement_keys_the_step_names_are_the_settings() -> None:
    from components.host.minikube import ALLOW_REPLACE_KEY, CONFIRM_ARCHIVE_KEY

    for key in (ALLOW_REPLACE_KEY, CONFIRM_ARCHIVE_KEY):
        assert SPECS[key.removeprefix("blumeops:")].section == "phases.p0_foundation.MinikubeSettings"
    assert SPECS["minikube.replaceConfirmArchive"].default is None
    assert not SPECS["minikube.replaceConfirmArchive"].required


def test_a_confirmed_replacement_loads() -> None:
    loaded = load(base_config(**{"minikube.allowReplace": "true", "minikube.replaceConfirmArchive": ARCHIVE,
                                 "minikube.replaceBorgRepository": "/Volumes/other/borg",
                                 "minikube.replaceBorgPasscommand": "/bin/cat /Users/erichblume/.borg/other"}))
    minikube = loaded.section(MinikubeSettings)
    assert minikube.allow_replace and minikube.replace_confirm_archive == ARCHIVE
    assert minikube.replace_borg_repository == "/Volumes/other/borg/"
    assert minikube.replace_borg_passcommand == "/bin/cat /Users/erichblume/.borg/other"
    unset = load(base_config()).section(MinikubeSettings)
    assert unset.replace_confirm_archive is None and unset.replace_borg_repository is None


def test_the_confirming_archive_without_allow_replace_names_both_settings() -> None:
    [problem] = problems(base_config(**{"minikube.replaceConfirmArchive": ARCHIVE}))
    assert problem.startswith("blumeops:minikube.* blumeops:minikube.replaceConfirmArchive is set but "
                              "blumeops:minikube.allowReplace is not true")
    assert "pulumi config set blumeops:minikube.allowReplace true" in problem
    assert "pulumi config rm blumeops:minikube.replaceConfirmArchive" in problem


def test_where_the_archive_is_needs_the_archive() -> None:
    [problem] = problems(base_config(**{"minikube.allowReplace": "true",
                                        "minikube.replaceBorgRepository": "/Volumes/other/borg"}))
    assert "blumeops:minikube.replaceBorgRepository is set without blumeops:minikube.replaceConfirmArchive" in problem
    assert "pulumi config set blumeops:minikube.replaceConfirmArchive <archive>" in problem


@pytest.mark.parametrize(("key", "value", "why"), [
    ("minikube.replaceConfirmArchive", "latest", "borgmatic's 'latest' is a moving target"),
    ("minikube.replaceConfirmArchive", "indri/2026", "no '/' and no '::'"),
    ("minikube.replaceConfirmArchive", "repo::indri", "no '/' and no '::'"),
    ("minikube.replaceConfirmArchive", "-rf", "not a borg archive name"),
    ("minikube.replaceConfirmArchive", "indri 2026", "not a borg archive name"),
    ("minikube.replaceBorgRepository", "backups/borg", "is relative"),
    ("minikube.replaceBorgPasscommand", "cat /Users/erichblume/.borg/config.yaml", "its program is relative"),
])
def test_bad_replacement_values_are_refused_naming_the_key(key: str, value: str, why: str) -> None:
    config = base_config(**{"minikube.allowReplace": "true", "minikube.replaceConfirmArchive": ARCHIVE, key: value})
    found = [p for p in problems(config) if p.startswith(f"blumeops:{key} ")]
    assert len(found) == 1, found
    assert why in found[0] and "pulumi config set blumeops:" in found[0], found[0]


def test_a_bad_confirming_archive_stops_the_program_before_any_resource() -> None:
    from ops import plan as offline_plan
    from ops.engine import harness

    stack = load_stack("indri")
    stack.config["blumeops:minikube.replaceConfirmArchive"] = "latest"
    with pytest.raises(harness.ProgramError) as caught:
        offline_plan.build_plan(stack)
    assert caught.value.registered == 0
    assert "blumeops:minikube.replaceConfirmArchive 'latest'" in str(caught.value)


def cluster_step_preamble(stack_config: dict[str, str], target: str) -> dict[str, str]:
    """The REPLACE_* (and a few more) values of the cluster step's preamble in the offline plan."""
    import shlex

    from ops import plan as offline_plan

    stack = load_stack("indri", target)
    stack.config.update(stack_config)
    text = offline_plan.build_plan(stack).artifacts["host/scripts/minikube-cluster.sh"]
    preamble = {}
    for name in ("ALLOW_REPLACE", "REPLACE_ARCHIVE", "REPLACE_REPOSITORY", "REPLACE_PASSCOMMAND",
                 "REPLACE_DUMP_PATHS", "REPLACE_RESTORE"):
        lexer = shlex.shlex(text[text.index(f"\nreadonly {name}=") + len(f"\nreadonly {name}="):], posix=True)
        lexer.whitespace_split, lexer.commenters = True, ""
        token = lexer.get_token()
        preamble[name] = "" if token is None or token.startswith("readonly") else token
    return preamble


def test_below_phase_3_the_replacement_is_checked_against_phase_3s_defaults() -> None:
    preamble = cluster_step_preamble({"blumeops:minikube.allowReplace": "true",
                                      "blumeops:minikube.replaceConfirmArchive": ARCHIVE}, "0")
    assert preamble["REPLACE_ARCHIVE"] == ARCHIVE
    assert preamble["REPLACE_REPOSITORY"] == "/Volumes/backups/borg/"
    assert preamble["REPLACE_PASSCOMMAND"] == "/bin/cat /Users/erichblume/.borg/config.yaml"
    assert preamble["REPLACE_DUMP_PATHS"].split("\n") == [
        "borgmatic/postgresql_databases/k8s-pg.tail8d86e.ts.net:5432/miniflux",
        "borgmatic/postgresql_databases/pg.tail8d86e.ts.net:5432/miniflux"]
    restore = preamble["REPLACE_RESTORE"]
    assert "does not restore it" in restore and "by hand" in restore and f"::{ARCHIVE} " in restore
    assert "pg_restore --clean --if-exists --no-owner --no-acl -h k8s-pg.tail8d86e.ts.net" in restore


def test_from_phase_3_the_replacement_is_checked_in_phase_3s_repository() -> None:
    preamble = cluster_step_preamble({"blumeops:minikube.allowReplace": "true",
                                      "blumeops:minikube.replaceConfirmArchive": ARCHIVE,
                                      "blumeops:borgmatic.repository": "/Volumes/nas/borg"}, "5")
    assert preamble["REPLACE_REPOSITORY"] == "/Volumes/nas/borg/"
    assert "-h pg.tail8d86e.ts.net" in preamble["REPLACE_RESTORE"]
    # an explicit repository in the minikube settings wins
    preamble = cluster_step_preamble({"blumeops:minikube.allowReplace": "true",
                                      "blumeops:minikube.replaceConfirmArchive": ARCHIVE,
                                      "blumeops:minikube.replaceBorgRepository": "/Volumes/old/borg"}, "5")
    assert preamble["REPLACE_REPOSITORY"] == "/Volumes/old/borg/"


def test_without_a_confirmation_the_step_carries_no_archive() -> None:
    preamble = cluster_step_preamble({}, "0")
    assert preamble["REPLACE_ARCHIVE"] == "" and preamble["ALLOW_REPLACE"] == "false"
