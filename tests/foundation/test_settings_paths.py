"""Settings that point a step at the operator's own files (issue 18): every path is judged by what it IS after
normalisation (``//`` collapsed, ``/.`` dropped, case folded as APFS folds it), not by how it is spelled."""

from __future__ import annotations

import json

import pytest

from tests.foundation.test_settings import ARCHIVE, _isolated_config, base_config, load, problems  # noqa: F401

HOME = "/Users/erichblume"


def problem_of(key: str, config: dict[str, str]) -> str:
    found = [p for p in problems(config) if p.startswith(f"blumeops:{key} ")]
    assert len(found) == 1, problems(config)
    assert "pulumi config set" in found[0], found[0]
    return found[0]


def at_target(phase: str, **overrides: str) -> dict[str, str]:
    """A config targeting ``phase`` with every required key set, so the sections' cross-field rules run."""
    config = base_config(phase=phase, **overrides)
    config.update({
        "blumeops:operator.oauthClientId": "id", "blumeops:operator.oauthClientSecret": "s",
        "blumeops:argocd.forgeSshPrivateKey": "k", "blumeops:argocd.forgeHostKey": base_config()[
            "blumeops:indri.hostKey"],
        "blumeops:postgres.eblumePassword": "p", "blumeops:postgres.borgmaticPassword": "b",
        "blumeops:grafana.adminUser": "admin", "blumeops:grafana.adminPassword": "g",
    })
    return config


# --- 1. normalisation, and the operator's keys, credentials and startup files -----------------------------


@pytest.mark.parametrize(("key", "value", "why"), [
    ("pgImport.dumpDir", f"{HOME}/.", "a home directory itself"),
    ("pgImport.dumpDir", "/Users//erichblume", "a home directory itself"),
    ("pgImport.dumpDir", "/users/erichblume", "a home directory itself"),  # APFS ignores case
    ("pgImport.dumpDir", "/USERS/erichblume/", "a home directory itself"),
    ("pgImport.dumpDir", "/.", "other programs share"),
    ("pgImport.dumpDir", "//tmp", "other programs share"),
    ("pgImport.dumpDir", "/Private/Tmp", "other programs share"),
    ("zot.configPath", "~/.SSH/authorized_keys", "uses ~"),
    ("zot.configPath", f"{HOME}/.SSH/authorized_keys", "inside .ssh"),
    ("zot.configPath", f"{HOME}/./.ssh//authorized_keys", "inside .ssh"),
    ("zot.configPath", f"{HOME}/.ZSHRC", "shell's startup file"),
    ("zot.configPath", f"{HOME}/.borg/config.yaml", "inside .borg"),
    ("zot.configPath", f"{HOME}/.netrc", "it is .netrc"),
    ("zot.configPath", f"{HOME}/.docker/config.json", "inside .docker"),
    ("zot.configPath", f"{HOME}/.config/gh/hosts.yml", "inside ~/.config/gh"),
    ("zot.configPath", f"{HOME}/.config/fish/config.fish", "inside ~/.config/fish"),
    ("zot.configPath", f"{HOME}/Library/LaunchAgents/mcquack.eblume.zot.plist", "inside ~/Library/LaunchAgents"),
    ("zot.configPath", f"{HOME}/library/launchagents/x.plist", "where launchd finds the programs it starts"),
    ("zot.configPath", f"{HOME}/.aws/credentials", "inside .aws"),
    ("zot.configPath", f"{HOME}/.kube/config", "inside .kube"),
    ("zot.configPath", f"{HOME}/.minikube/profiles/minikube/config.json", "inside .minikube"),
    ("zot.configPath", HOME, "a home directory itself"),
    ("zot.dataDir", f"{HOME}/.GnuPG/zot", "inside .gnupg"),
    ("borgmatic.pgpassPath", f"{HOME}/.bashrc", "shell's startup file"),
    ("borgmatic.pgpassPath", f"{HOME}/.bash_profile", "shell's startup file"),
    ("borgmatic.pgpassPath", f"{HOME}/.profile", "shell's startup file"),
    ("borgmatic.pgpassPath", f"{HOME}/.zprofile", "shell's startup file"),
    ("borgmatic.pgpassPath", f"{HOME}/.zshenv", "shell's startup file"),
    ("borgmatic.pgpassPath", f"{HOME}/.zlogin", "shell's startup file"),
    ("borgmatic.configPath", "/ETC/borgmatic.yaml", "under /etc"),
    ("metrics.scriptDir", f"{HOME}/Documents", "every program of the user shares"),
    ("metrics.scriptDir", f"{HOME}/.config", "every program of the user shares"),
    ("metrics.scriptDir", "/opt/homebrew/var", "other programs share"),
])
def test_a_path_is_judged_by_what_it_is_after_normalisation(key: str, value: str, why: str) -> None:
    problem = problem_of(key, base_config(**{key: value}))
    assert why in problem, problem


def test_an_equivalent_spelling_of_a_good_path_is_accepted_and_normalised() -> None:
    from phases.p0_foundation import ZotSettings

    zot = load(base_config(**{"zot.dataDir": f"{HOME}/./zot//data/", "zot.configPath": f"{HOME}//.config/zot/c.json"}))
    assert zot.section(ZotSettings).data_dir == f"{HOME}/zot/data"
    assert zot.section(ZotSettings).config_path == f"{HOME}/.config/zot/c.json"


# --- 2. directories a step reads and copies elsewhere ---------------------------------------------------


@pytest.mark.parametrize("value", [
    f"{HOME}/.ssh", f"{HOME}/.SSH/", f"{HOME}/.gnupg", f"{HOME}/.config/gh", f"{HOME}/.borg",
    HOME, f"{HOME}/.", "/Users/ErichBlume", "/", "/.", "/tmp", "/private/tmp", "/var", "/etc", "/usr",
    "/opt/homebrew", "/Users", "/Volumes", f"{HOME}/Library", f"{HOME}/.config",
])
def test_the_transmission_downloads_copied_to_the_nas_are_never_the_operators_own(value: str) -> None:
    problem = problem_of("transmission.legacyDownloads", base_config(**{"transmission.legacyDownloads": value}))
    assert "not a directory blumeops may copy" in problem, problem


@pytest.mark.parametrize(("key", "value"), [
    ("transmission.legacyConfig", f"{HOME}/.ssh"),
    ("forgejo.legacyVar", "/opt/homebrew"),
    ("forgejo.legacyData", f"{HOME}/.gnupg/forgejo"),
    ("devpi.legacyServerDir", HOME),
    ("devpi.legacyServerDir", "/users//erichblume/."),
])
def test_every_copied_legacy_directory_is_judged_the_same(key: str, value: str) -> None:
    problem = problem_of(key, base_config(**{key: value}))
    assert "not a directory blumeops may copy" in problem, problem


def test_a_legacy_directory_of_its_own_is_copied() -> None:
    from phases.p6_kiwix_transmission import TransmissionSettings

    loaded = load(at_target("6", **{"devpi.rootPassword": "r", "miniflux.databasePassword": "m",
                                    "transmission.legacyDownloads": f"{HOME}/Downloads/"}))
    assert loaded.section(TransmissionSettings).legacy_downloads == f"{HOME}/Downloads"


# --- 3. what phase 9 removes (rm -rf) -----------------------------------------------------------------


@pytest.mark.parametrize(("value", "why"), [
    (f"{HOME}/Documents", "every program of the user shares"),
    (f"{HOME}/documents/", "every program of the user shares"),
    (f"{HOME}/.config", "every program of the user shares"),
    (f"{HOME}/Library", "every program of the user shares"),
    (f"{HOME}/Library/Logs", "holds every program's"),
    (f"{HOME}/.local/share", "holds every program's"),
    ("/opt/homebrew/var", "other programs share"),
    ("/opt/homebrew/var/log", "a service's own directory below var/"),
    ("/opt/homebrew/Cellar", "a service's own directory below var/"),
    ("/opt/homebrew/var/../var", "contains '..'"),
])
def test_the_removed_data_is_a_retired_services_own_directory(value: str, why: str) -> None:
    problem = problem_of("cleanup.removeData", base_config(**{"cleanup.removeData": json.dumps([value])}))
    assert why in problem, problem


def test_a_retired_services_data_directory_may_be_removed() -> None:
    from phases.p9_cleanup import CleanupSettings

    config = at_target("9", **{"cleanup.removeData": json.dumps(["/opt/homebrew/var/forgejo", f"{HOME}/devpi"])})
    config.update({f"blumeops:{key}": "x" for key in (
        "miniflux.databasePassword", "devpi.rootPassword", "forgejo.secretKey", "forgejo.internalToken",
        "forgejo.jwtSecret", "woodpecker.agentSecret", "woodpecker.forgejoToken")})
    config.update({f"blumeops:forgejo.{key}": "x" * 16 for key in ("secretKey", "internalToken", "jwtSecret")})
    assert load(config).section(CleanupSettings).remove_data == ("/opt/homebrew/var/forgejo", f"{HOME}/devpi")


# --- 4. the legacy tags are never indri's own -----------------------------------------------------------


@pytest.mark.parametrize("tag", ["tag:homelab", "tag:blumeops", "tag:registry", "tag:k8s-api"])
def test_the_legacy_service_tags_never_hold_indris_own(tag: str) -> None:
    [problem] = problems(base_config(**{"tailnet.legacyServiceTags": json.dumps(["tag:forge", tag])}))
    assert problem.startswith("blumeops:tailnet.* "), problem
    assert f"{tag}" in problem and "indri carries as its own" in problem
    assert "pulumi config set blumeops:tailnet.legacyServiceTags" in problem


# --- 5. zot's upstreams -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("upstreams", "why"), [
    ({"docker.io": "https://registry-1.docker.io", "registry.tail8d86e.ts.net": "https://example.com"},
     "a tailnet's name"),
    ({"docker.io": "https://registry-1.docker.io", "registry.tail8d86e.ts.net:443": "https://example.com"},
     "a tailnet's name"),
    ({"ghcr.io": "https://ghcr.io"}, "has no docker.io"),
])
def test_zot_never_sends_the_homelabs_own_images_outside_and_mirrors_docker_hub(upstreams: dict[str, str],
                                                                                 why: str) -> None:
    problem = problem_of("zot.upstreams", base_config(**{"zot.upstreams": json.dumps(upstreams)}))
    assert why in problem, problem


# --- 6. the borg passphrase is read from somewhere, never written in the command ---------------------------


@pytest.mark.parametrize("command", [
    "/bin/echo hunter2", "/usr/bin/printf hunter2", "/bin/cat <<<hunter2", "/bin/bash -c 'echo hunter2'",
    "/usr/bin/env printf hunter2", "/bin/sh -c 'cat <<EOF\nhunter2\nEOF'".replace("\n", " "),
])
def test_a_passcommand_never_holds_a_literal_passphrase(command: str) -> None:
    problem = problem_of("borgmatic.encryptionPasscommand",
                         base_config(**{"borgmatic.encryptionPasscommand": command}))
    assert "prints a passphrase written in the command" in problem and "security find-generic-password" in problem
    assert "hunter2" not in problem


def test_the_replacement_passcommand_is_judged_the_same() -> None:
    config = base_config(**{"minikube.allowReplace": "true", "minikube.replaceConfirmArchive": ARCHIVE,
                            "minikube.replaceBorgPasscommand": "/bin/echo hunter2"})
    problem = problem_of("minikube.replaceBorgPasscommand", config)
    assert "prints a passphrase written in the command" in problem and "hunter2" not in problem


def test_a_passcommand_that_reads_the_passphrase_is_accepted() -> None:
    from phases.p3_postgres_data import BorgmaticSettings

    command = "/usr/bin/security find-generic-password -a erichblume -s borg -w"
    loaded = load(at_target("3", **{"borgmatic.encryptionPasscommand": command}))
    assert loaded.section(BorgmaticSettings).encryption_passcommand == command


# --- 7. the repository is outside what it backs up ---------------------------------------------------------


@pytest.mark.parametrize(("overrides", "source"), [
    ({"borgmatic.repository": f"{HOME}/Documents/borg/"}, f"{HOME}/Documents"),
    ({"borgmatic.repository": "/users/erichblume/documents/borg"}, f"{HOME}/Documents"),
    ({"borgmatic.sourceDirectories": json.dumps(["/Volumes/backups"])}, "/Volumes/backups"),
    ({"borgmatic.sourceDirectories": json.dumps([HOME]), "borgmatic.repository": f"{HOME}/borg"}, HOME),
])
def test_the_borg_repository_is_never_inside_its_own_sources(overrides: dict[str, str], source: str) -> None:
    found = [p for p in problems(at_target("3", **overrides)) if p.startswith("blumeops:borgmatic.* ")]
    assert len(found) == 1, found
    assert f"inside the source directory {source!r}" in found[0], found[0]
    assert "pulumi config set blumeops:borgmatic.repository" in found[0]


# --- 8. a tool path names a program ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["/.", "/tmp/.", "/Users/x", "/bin/./bash", "/opt/homebrew/bin", "/usr/bin",
                                   "/Users", "/tmp"])
def test_a_tool_path_names_a_program_not_a_directory(value: str) -> None:
    problem = problem_of("tools.bash", base_config(**{"tools.bash": value}))
    assert "write the path of the program" in problem or "plain path of a program" in problem, problem
