"""The bypasses audit issue 18 found still open, one section per class (A-G). Each violating case failed before
the rule was widened; each has a passing twin, so no rule can be a blanket refusal.

A LaunchAgent programs that run code the shell rule did not see; B launchd jobs made outside a LaunchAgent; C
Kubernetes objects the pack never saw; D NFS servers on another tailnet; E stateful and cluster-wide objects; F
secrets left over; G the environment a LaunchAgent may set."""

from __future__ import annotations

import base64
import plistlib
from typing import Any

import pytest
from rules import images as image_rules
from rules.cluster import nfs_allowed_servers, protect_stateful_resources, workload_security
from rules.launch_agents import absolute_launchagent_paths, launchagent_no_shell, launchd_plists_from_launchagents
from rules.remote_commands import CREATE_COMMAND, DELETE_COMMAND
from rules.secrets import no_plaintext_secrets
from rules.visibility import objects_visible_to_the_pack

from tests.policy.conftest import AMD64_ONLY, GOOD, GOOD_DIGEST, secret

AGENT = "blumeops:host:LaunchAgent"
COMMAND = "command:remote:Command"
RETIREMENT = "blumeops:host:LegacyServiceRetirement"
HOME = "/Users/erichblume"
ZOT = f"{HOME}/code/3rd/zot/bin/zot-darwin-arm64"
LABEL = "mcquack.eblume.zot"
PLIST_PATH = f"{HOME}/Library/LaunchAgents/{LABEL}.plist"


def agent(arguments: list[str], **extra: Any) -> dict[str, Any]:
    return {"label": LABEL, "plistPath": PLIST_PATH, "programArguments": arguments,
            "standardOutPath": f"{HOME}/Library/Logs/zot.log", "standardErrorPath": f"{HOME}/Library/Logs/zot.err",
            "runAtLoad": True, "keepAlive": True, **extra}


# -- A: what a LaunchAgent runs -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "arguments",
    [
        ["/usr/bin/osascript", "-l", "JavaScript", "-e", "ObjC.import('stdlib'); $.system('id')"],
        ["/usr/bin/python3", "-Ic", "import os; os.system('id')"],
        ["/usr/bin/perl", "-we", "system('id')"],
        ["/opt/homebrew/bin/fish", "--command=id"],
        ["/usr/bin/awk", "BEGIN{system(\"id\")}"],
        ["/usr/bin/expect", "-c", "spawn /bin/sh"],
        ["/bin/launchctl", "asuser", "501", "/bin/sh", "-c", "id"],
        ["/usr/bin/script", "-q", "/dev/null", "/bin/sh", "-c", "id"],
        ["/usr/bin/find", "/tmp", "-maxdepth", "0", "-exec", "/bin/sh", "-c", "id", ";"],
        ["/usr/bin/ssh", "indri", "id"],
        ["/usr/bin/env", "-S", "zot serve"],
        ["/opt/homebrew/bin/node", "--eval=require('child_process').execSync('id')"],
        ["/opt/homebrew/bin/pwsh", "-c", "id"],
        ["/usr/bin/swift", "-e", "print(1)"],
        ["/opt/homebrew/bin/python3.12", "-I", f"{HOME}/bin/x.py"],  # an option before the script
        ["/bin/bash", "-l", f"{HOME}/bin/x"],  # a login shell reads ~/.bash_profile first
        ["/bin/bash", "/dev/stdin"],  # code from stdin, not a file
        ["/bin/bash"],
        ["/usr/bin/perl5.34", "-E", "say 1"],
        # every argument, not just the first: a plain program handed a shell command
        ["/opt/homebrew/bin/watchexec", "--restart", "--", "/bin/sh", "-c", "id"],
        ["/opt/homebrew/bin/tool", "--shell=/bin/zsh"],
        ["/opt/homebrew/bin/tool", "--run", "bash -c id"],
    ],
)
def test_a_launch_agent_hands_no_code_to_a_launcher(check: Any, arguments: list[str]) -> None:
    messages = check(launchagent_no_shell, AGENT, agent(arguments), name="zot-agent")
    assert messages and all(LABEL in m and "script file" in m for m in messages), messages


@pytest.mark.parametrize(
    "arguments",
    [
        [ZOT, "serve", f"{HOME}/.config/zot/config.json"],  # the program's own agents
        ["/bin/bash", f"{HOME}/bin/zot-metrics", "agent"],
        ["/opt/homebrew/bin/borgmatic", "--config", f"{HOME}/.config/borgmatic/config.yaml", "--verbosity", "1",
         "create", "prune", "compact"],
        ["/bin/bash", "--noprofile", "-e", "-o", "pipefail", f"{HOME}/bin/k8s-api-serve"],
        ["/usr/bin/python3", f"{HOME}/bin/script.py", "-c", "config"],  # the script's own options
        ["/usr/bin/osascript", f"{HOME}/bin/notify.scpt"],
        ["/opt/homebrew/bin/node18", f"{HOME}/app/server.js", "--port", "8080"],
    ],
)
def test_a_program_or_a_script_file_passes(check: Any, arguments: list[str]) -> None:
    assert check(launchagent_no_shell, AGENT, agent(arguments)) == []
    assert check(absolute_launchagent_paths, AGENT, agent(arguments)) == []


def test_env_split_string_names_a_bare_command(check: Any) -> None:
    messages = check(absolute_launchagent_paths, AGENT, agent(["/usr/bin/env", "-S", "zot serve"]))
    assert any("'zot'" in m and "bare command name" in m for m in messages), messages
    assert check(absolute_launchagent_paths, AGENT, agent(["/usr/bin/env", "-S", f"{ZOT} serve"])) == []


# -- B: launchd jobs made outside a LaunchAgent --------------------------------------------------------------

def step(stdin: str, **extra: Any) -> dict[str, Any]:
    return {"create": CREATE_COMMAND, "delete": DELETE_COMMAND, "stdin": stdin, **extra}


def preamble(**values: str) -> str:
    return "".join(f"readonly {name}='{value}'\n" for name, value in values.items())


INSTALL = preamble(LABEL=LABEL, PLIST_PATH=PLIST_PATH, GUI_DOMAIN="gui/501", LAUNCHCTL="/bin/launchctl",
                   PLUTIL="/usr/bin/plutil")


def plist_text(*arguments: str) -> str:
    return plistlib.dumps({"Label": "x", "ProgramArguments": list(arguments)}).decode()


def plist_messages(check: Any, props: dict[str, Any], parent: str | None = None) -> list[str]:
    return check(launchd_plists_from_launchagents, COMMAND, props, name="sneaky", parent=parent, wire=True)


@pytest.mark.parametrize(
    ("stdin", "parent", "expected"),
    [
        ("/bin/launchctl submit -l evil -- /bin/sh -c id\n", None, "launchctl submit"),
        (INSTALL + '"$LAUNCHCTL" submit -l evil -- /bin/sh -c id\n', AGENT, "launchctl submit"),
        ("launchctl asuser 501 /bin/sh -c id\n", "blumeops:phase:Phase", "launchctl asuser"),
        ("launchctl setenv DYLD_INSERT_LIBRARIES /tmp/x.dylib\n", None, "launchctl setenv"),
        ("/bin/launchctl bootstrap gui/501 /tmp/x.plist\n", "blumeops:host:ZotRegistry", "not the install step"),
        (INSTALL + '"$LAUNCHCTL" bootstrap "$GUI_DOMAIN" /tmp/x.plist\n', AGENT, "not the plist the step declares"),
        (INSTALL + 'bash -c "launchctl bootstrap gui/501 /tmp/x.plist"\n', AGENT, "not the plist the step declares"),
        (INSTALL + '"$LAUNCHCTL" enable gui/501/evil; "$LAUNCHCTL" kickstart gui/501/evil\n', AGENT,
         "not the job the step declares"),
        ('x=$(command -v launchctl); $x bootstrap gui/501 /tmp/x\n', None, "not a word the pack can read"),
        ('f() { "$1" submit -l x -- /bin/sh; }; f /bin/launchctl\n', None, "not a word the pack can read"),
        ("laun''chctl sub\\mit -l x -- /bin/sh\n", None, "launchctl submit"),
        ("echo submit -l x -- /bin/sh | xargs /bin/launchctl\n", None, "not a word the pack can read"),
        ("cp /bin/launchctl /tmp/lc && /tmp/lc submit -l x -- /bin/sh\n", None, "not a word the pack can read"),
        ("$'\\x6caunchctl' submit -l x -- /bin/sh\n", None, "launchctl submit"),
        # the directory spelled so the word `LaunchAgents` never appears
        (f"cp /tmp/x {HOME}/Library/Launch?gents/x.plist\n", None, "writes into ~/Library/LaunchAgents"),
        (f"cp /tmp/x {HOME}/Library/Launch*s/\n", None, "writes into ~/Library/LaunchAgents"),
        (f"cp /tmp/x {HOME}/Library/Launch''Agents/\n", None, "writes into ~/Library/LaunchAgents"),
        (f"cp /tmp/x {HOME}/Library/Launch\\Agents/\n", None, "writes into ~/Library/LaunchAgents"),
        ('D=Agents; cp /tmp/x "$HOME/Library/Launch$D/"\n', None, "writes into ~/Library/LaunchAgents"),
        ('cp /tmp/x "$HOME/Library/$(printf %s Launch Agents)/"\n', None, "writes into ~/Library/LaunchAgents"),
        ("cp /tmp/x ~/Lib*/L*/\n", None, "writes into ~/Library/LaunchAgents"),
        ("sudo cp /tmp/x /Library/LaunchDaemon[s]/\n", None, "writes into ~/Library/LaunchAgents"),
        # a plist nobody can read
        ("printf %s " + base64.b64encode(b"bplist00" + b"\0" * 20).decode() + " | base64 -d > /tmp/x\n", AGENT,
         "binary or encoded plist"),
        ("printf 'bplist00\\x00' > /tmp/x\n", None, "binary or encoded plist"),
        ("echo " + base64.b64encode(plist_text("/bin/sh", "-c", "id").encode()).decode() + "\n", AGENT,
         "binary or encoded plist"),
        # editing the plist the install step wrote
        (INSTALL + '"$PLUTIL" -insert ProgramArguments.0 -string /bin/sh "$PLIST_PATH"\n', AGENT, "edits a plist"),
        (INSTALL + '/usr/bin/plutil -replace ProgramArguments -json \'["/bin/sh"]\' "$PLIST_PATH"\n', AGENT,
         "edits a plist"),
        (INSTALL + 'defaults write "${PLIST_PATH%.plist}" ProgramArguments -array /bin/sh -c id\n', AGENT,
         "edits a plist"),
        (INSTALL + '/usr/libexec/PlistBuddy -c "Set :Program /bin/sh" "$PLIST_PATH"\n', AGENT, "edits a plist"),
    ],
)
def test_a_launchd_job_only_from_a_launch_agent(check: Any, stdin: str, parent: str | None, expected: str) -> None:
    messages = plist_messages(check, step(stdin), parent)
    assert any(expected in m for m in messages), messages


def test_a_plist_in_any_text_of_the_install_step_is_judged(check: Any) -> None:
    """A mapping's values (the command's `environment`) and nested texts were never read."""
    bad = step(INSTALL, environment={"EXTRA": plist_text("/bin/sh", "-c", "id")})
    messages = plist_messages(check, bad, AGENT)
    assert any("`environment.EXTRA`" in m and "shell code" in m for m in messages), messages
    outside = step("echo hi\n", environment={"P": plist_text(ZOT, "serve")})
    assert any("not the install step" in m for m in plist_messages(check, outside, "blumeops:phase:Phase"))
    good = step(INSTALL, environment={"EXTRA": plist_text(ZOT, "serve")})
    assert plist_messages(check, good, AGENT) == []


@pytest.mark.parametrize("resource_type", ["command:remote:CopyToRemote", "command:remote:CopyFile"])
def test_a_plist_file_copied_anywhere_is_another_means(check: Any, resource_type: str) -> None:
    props = {"remotePath": "/tmp/x.plist", "localPath": "/tmp/x.plist"}
    messages = check(launchd_plists_from_launchagents, resource_type, props)
    assert any("not the install step" in m for m in messages), messages
    assert check(launchd_plists_from_launchagents, resource_type, {"remotePath": "/tmp/x.json"}) == []


@pytest.mark.parametrize(
    ("stdin", "parent"),
    [
        # the LaunchAgent's own install step: its plist, its label
        (INSTALL + f"readonly PLIST='{plist_text(ZOT, 'serve')}'\n"
         'bounded 30 "$LAUNCHCTL" bootstrap "$GUI_DOMAIN" "$PLIST_PATH" ||\n'
         '  die "launchctl bootstrap $GUI_DOMAIN $PLIST_PATH failed: the gui domain exists only while logged in"\n'
         '"$LAUNCHCTL" kickstart -k "$GUI_DOMAIN/$LABEL"\n"$PLUTIL" -lint "$PLIST_PATH"\n'
         '"$PLUTIL" -extract Label raw -o - "$PLIST_PATH"\n', AGENT),
        # a retirement puts the retired service's own plist back
        (preamble(PLIST_PATH=f"{HOME}/Library/LaunchAgents/homebrew.mxcl.grafana.plist", LAUNCHCTL="/bin/launchctl")
         + 'domain=$(agent_domain)\n"$LAUNCHCTL" bootstrap "$domain" "$PLIST_PATH"\n', RETIREMENT),
        # any step reads and stops jobs, names other Library directories, edits JSON with plutil
        (preamble(LAUNCHCTL="/bin/launchctl") + '"$LAUNCHCTL" print gui/501/x; launchctl bootout gui/501/y\n'
         f"ls {HOME}/Library/Logs/* ~/Library/Application\\ Support/x\n"
         'plutil -remove addrs.0 -o "$body" "$body"\nrequire_tool "$LAUNCHCTL" launchctl\n'
         'echo "${x#y}" # launchctl submit in a comment\n', "blumeops:phase:Phase"),
    ],
)
def test_the_programs_own_launchd_steps_pass(check: Any, stdin: str, parent: str) -> None:
    assert plist_messages(check, step(stdin), parent) == []


# -- C: Kubernetes objects the pack never sees ----------------------------------------------------------------

@pytest.mark.parametrize(
    "stdin",
    [
        "kubectl run evil --image=docker.io/library/amd64only:1.0\n",
        "readonly KUBECTL=/opt/homebrew/bin/kubectl\nbounded 60 \"$KUBECTL\" --context x apply -f - <<'EOF'\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: x, image: evil}]}\nEOF\n",
        "cat <<EOF | kubectl create -f -\nkind: Pod\nEOF\n",
        "minikube kubectl -- create deployment x --image=evil\n",
        "/opt/homebrew/bin/kubectl -n default patch deploy x -p '{}'\n",
        'K=kubectl; $K "$(echo apply)" -f /tmp/x.yaml\n',
        "helm upgrade --install x oci://evil/chart\n",
        "minikube addons enable registry\n",
        "echo apply -f /tmp/x.yaml | xargs kubectl\n",
        "minikube start --addons=ingress\n",
    ],
)
def test_a_host_step_writes_nothing_to_the_cluster(check: Any, stdin: str) -> None:
    messages = check(objects_visible_to_the_pack, COMMAND, step(stdin), name="sneaky")
    assert messages and all("sneaky" in m for m in messages), messages


def test_a_host_step_may_read_the_cluster(check: Any) -> None:
    stdin = ("readonly KUBECTL=/opt/homebrew/bin/kubectl\n"
             '"$KUBECTL" --kubeconfig "$K" --context "$P" -n "$N" get pvc -o jsonpath={.x}\n'
             '"$KUBECTL" --context "$P" -n forgejo port-forward svc/forgejo 3000:3000 &\n'
             '"$KUBECTL" --kubeconfig "$K" config view --raw --minify\nkubectl auth can-i get pods\n'
             'helm template x ./chart\nminikube -p x status; minikube image load x:1\n'
             'die "back up what you need (\\`kubectl get all -A -o yaml\\`)"\n')
    assert check(objects_visible_to_the_pack, COMMAND, step(stdin)) == []


@pytest.mark.parametrize(
    ("resource_type", "props"),
    [
        ("kubernetes:helm.sh/v3:Release", {"chart": "x", "values": {}}),
        ("kubernetes:helm.sh/v3:Chart", {"chart": "x"}),
        ("kubernetes:yaml:ConfigGroup", {"yaml": ["kind: Pod"]}),
        ("kubernetes:yaml:ConfigFile", {"file": "pod.yaml"}),
        ("kubernetes:yaml/v2:ConfigFile", {"file": "pod.yaml"}),
        ("kubernetes:yaml/v2:ConfigGroup", {"files": ["manifests/*.yaml"]}),
        ("kubernetes:kustomize:Directory", {"directory": "./k"}),
        ("kubernetes:kustomize/v2:Directory", {"directory": "./k"}),
        ("kubernetes:helm.sh/v4:Chart", {"chart": "x", "postRenderer": {"command": "/tmp/rewrite"}}),
    ],
)
def test_renderers_the_pack_cannot_see_through_are_refused(check: Any, resource_type: str,
                                                          props: dict[str, Any]) -> None:
    [message] = check(objects_visible_to_the_pack, resource_type, props)
    assert "kubernetes:helm.sh/v4:Chart" in message or "`yaml` or `objs`" in message or "postRenderer" in message


def test_renderers_the_pack_sees_through_pass(check: Any) -> None:
    assert check(objects_visible_to_the_pack, "kubernetes:helm.sh/v4:Chart", {"chart": "x", "values": {}}) == []
    assert check(objects_visible_to_the_pack, "kubernetes:yaml/v2:ConfigGroup", {"yaml": "kind: Pod"}) == []
    assert check(objects_visible_to_the_pack, "kubernetes:apps/v1:Deployment", {"spec": {}}) == []


@pytest.mark.parametrize(
    "parts",
    [
        {"repository": AMD64_ONLY.rsplit(":", 1)[0], "tag": "1.0"},
        {"registry": "docker.io", "repository": "example/amd64only", "tag": "1.0"},
        {"repo": "docker.io/example/amd64only", "tag": "1.0"},
        {"Repository": "docker.io/example/amd64only", "Tag": 1.0},
    ],
)
def test_an_image_assembled_from_parts_under_any_key(check: Any, catalog: Any, parts: dict[str, Any]) -> None:
    props = {"spec": {"server": {"replicas": 1, **parts}}}
    [message] = check(image_rules.arm64_images, "kubernetes:example.com/v1:Widget", props)
    assert "spec.server" in message and "amd64only" in message
    good = {"spec": {"server": {"repository": "ghcr.io/miniflux/miniflux", "tag": "2.2.16"}}}
    assert check(image_rules.arm64_images, "kubernetes:example.com/v1:Widget", good) == []
    chart_repo = {"spec": {"source": {"repo": "https://charts.example.com", "tag": "v1"}}}
    assert check(image_rules.arm64_images, "kubernetes:example.com/v1:Widget", chart_repo) == []


def test_a_digest_must_be_one_the_catalogue_verified(check: Any, catalog: Any) -> None:
    unverified = "docker.io/tailscale/tailscale:v1.102.3@sha256:" + "d" * 64
    [message] = check(image_rules.arm64_images, "kubernetes:core/v1:Pod", {"spec": {"containers": [
        {"name": "ts", "image": unverified}]}})
    assert "does not record as verified" in message
    verified = f"{GOOD}@{GOOD_DIGEST}"
    assert check(image_rules.arm64_images, "kubernetes:core/v1:Pod", {"spec": {"containers": [
        {"name": "app", "image": verified}]}}) == []


# -- D: NFS only from the stack's tailnet ----------------------------------------------------------------------

def test_nfs_magicdns_names_only_on_the_stacks_tailnet(check: Any) -> None:
    def pv(server: str) -> dict[str, Any]:
        return {"spec": {"persistentVolumeReclaimPolicy": "Retain", "nfs": {"server": server, "path": "/v"}}}

    pv_type = "kubernetes:core/v1:PersistentVolume"
    for foreign in ("sifaka.evil.ts.net", "sifaka.tail0000.ts.net", "sifaka.x.tail8d86e.ts.net"):
        [message] = check(nfs_allowed_servers, pv_type, pv(foreign))
        assert foreign in message
    for own in ("sifaka", "sifaka.tail8d86e.ts.net", "SIFAKA.TAIL8D86E.TS.NET."):
        assert check(nfs_allowed_servers, pv_type, pv(own)) == [], own
    config = {"allowedServers": ["sifaka"], "tailnet": "tail1234.ts.net"}
    assert check(nfs_allowed_servers, pv_type, pv("sifaka.tail1234.ts.net"), config=config) == []
    assert check(nfs_allowed_servers, pv_type, pv("sifaka.tail8d86e.ts.net"), config=config) != []


# -- E: stateful and cluster-wide objects ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("resource_type", "bad", "good"),
    [
        ("kubernetes:postgresql.cnpg.io/v1:Database",
         {"spec": {"name": "app", "owner": "app", "cluster": {"name": "pg"}, "databaseReclaimPolicy": "delete"}},
         {"spec": {"name": "app", "owner": "app", "cluster": {"name": "pg"}, "databaseReclaimPolicy": "retain"}}),
        ("kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshotContent",
         {"spec": {"deletionPolicy": "Delete", "driver": "x", "source": {"snapshotHandle": "h"}}},
         {"spec": {"deletionPolicy": "Retain", "driver": "x", "source": {"snapshotHandle": "h"}}}),
        ("kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshot",
         {"spec": {"source": {"persistentVolumeClaimName": "data"}}}, None),
        ("kubernetes:example.com/v1:Bucket", {"spec": {"bucketReclaimPolicy": "Delete"}},
         {"spec": {"bucketReclaimPolicy": "Retain"}}),
    ],
)
def test_what_deletes_its_data_is_protected(check: Any, resource_type: str, bad: dict[str, Any],
                                            good: dict[str, Any] | None) -> None:
    [message] = check(protect_stateful_resources, resource_type, bad)
    assert "neither protected nor kept" in message
    assert check(protect_stateful_resources, resource_type, bad, protect=True) == []
    if good is not None:
        assert check(protect_stateful_resources, resource_type, good) == []


RBAC = "kubernetes:rbac.authorization.k8s.io/v1"


@pytest.mark.parametrize(
    ("resource_type", "bad", "expected"),
    [
        ("kubernetes:core/v1:PersistentVolume", {"spec": {"hostPath": {"path": "/"}}}, "hostPath"),
        ("kubernetes:core/v1:PersistentVolume", {"spec": {"local": {"path": "/"}, "nodeAffinity": {}}}, "local"),
        ("kubernetes:example.com/v1:Disk", {"spec": {"storage": {"hostPath": "/var/lib"}}}, "hostPath"),
        (f"{RBAC}:ClusterRole", {"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}, "'*'"),
        (f"{RBAC}:ClusterRole", {"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}]},
         "every verb"),
        (f"{RBAC}:Role", {"rules": [{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}]}, "every resource"),
        (f"{RBAC}:ClusterRoleBinding", {"roleRef": {"kind": "ClusterRole", "name": "view"},
                                        "subjects": [{"kind": "Group", "name": "system:masters"}]}, "system:masters"),
        (f"{RBAC}:RoleBinding", {"roleRef": {"kind": "Role", "name": "x"},
                                 "subjects": [{"kind": "Group", "name": "system:unauthenticated"}]}, "every client"),
    ],
)
def test_the_node_and_the_cluster_stay_out_of_reach(check: Any, resource_type: str, bad: dict[str, Any],
                                                    expected: str) -> None:
    messages = check(workload_security, resource_type, bad, name="sneaky")
    assert messages and any(expected in m for m in messages), messages


def test_their_narrow_twins_pass(check: Any) -> None:
    nfs = {"spec": {"nfs": {"server": "sifaka", "path": "/v"}, "persistentVolumeReclaimPolicy": "Retain"}}
    assert check(workload_security, "kubernetes:core/v1:PersistentVolume", nfs) == []
    role = {"rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
                      {"nonResourceURLs": ["*"], "verbs": ["get"]}]}
    assert check(workload_security, f"{RBAC}:ClusterRole", role) == []
    binding = {"roleRef": {"kind": "ClusterRole", "name": "view"},
               "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": "x"}]}
    assert check(workload_security, f"{RBAC}:ClusterRoleBinding", binding) == []
    chart_values = {"values": {"persistence": {"hostPath": ""}}}
    assert check(workload_security, "kubernetes:helm.sh/v4:Chart", chart_values) == []


def test_wildcard_roles_are_reviewed_exceptions(check: Any) -> None:
    wildcard = {"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}
    # Argo CD's application controller applies whatever it syncs: named in the pack's reviewed defaults
    assert check(workload_security, f"{RBAC}:ClusterRole", wildcard,
                 name="argocd-chart:argocd-application-controller") == []
    assert check(workload_security, f"{RBAC}:ClusterRole", wildcard, name="other") != []
    assert check(workload_security, f"{RBAC}:ClusterRole", wildcard, name="argocd-chart:argocd-application-controller",
                 config={"wildcardRoles": ["x"]}) != []


# -- F: secrets left over --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "stdin",
    [
        "readonly PGPASS_LINES='h:5432:*:u:pw'\n",
        'printf "%s\\n" "db.tail8d86e.ts.net:5432:miniflux:miniflux:s3cr3t" > ~/.pgpass\n',
        "echo 10.0.0.5:*:*:postgres:hunter2 >> ~/.pgpass\n",
    ],
)
def test_a_pgpass_line_anywhere_in_plain_stdin(check: Any, stdin: str) -> None:
    messages = check(no_plaintext_secrets, COMMAND, step(stdin), wire=True)
    assert any(".pgpass line" in m for m in messages), messages
    assert check(no_plaintext_secrets, COMMAND, step(secret(stdin)), wire=True) == []


def test_pgpass_shaped_text_that_is_no_pgpass_line_passes(check: Any) -> None:
    stdin = ("date 2026-01-01T12:30:00+01:00; t=12:30:00:00:11; ip=fe80:1:2:3:4:5:6:7; x=a:b:c:d:e\n"
             "readonly PGPASS_LINE='h:5432:*:u:$PGPASSWORD'; y='h:5432:db:u:<password>' z='h:*:*:u:*'\n"
             "image docker.io/library/redis:8 and postgres://db:5432/app\n")
    assert check(no_plaintext_secrets, COMMAND, step(stdin), wire=True) == []


def test_trigger_items_of_any_shape_are_read(check: Any) -> None:
    props = {**step("echo"), "triggers": [{"password": "hunter2"}, ["x", {"db": {"apiToken": "abc"}}]]}
    messages = check(no_plaintext_secrets, COMMAND, props, wire=True)
    assert any("`triggers[0].password`" in m for m in messages), messages
    assert any("`triggers[1][1].db.apiToken`" in m for m in messages), messages
    marked = {**step("echo"), "triggers": [{"password": secret("hunter2")}, "a digest", {"passwordFile": "/x"}]}
    assert check(no_plaintext_secrets, COMMAND, marked, wire=True) == []


@pytest.mark.parametrize(("name", "value"), [
    ("DB_CREDS", "hunter2"), ("SERVICE_CREDENTIALS", "hunter2"), ("DATABASE_URL", "postgres://app:hunter2@db/app"),
    ("REDIS_URL", "redis://:hunter2@redis:6379/0"), ("SENTRY_DSN", "https://key:sekrit@sentry.example/1")])
def test_container_env_holding_credentials(check: Any, name: str, value: str) -> None:
    def deployment(env_value: str) -> dict[str, Any]:
        return {"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": GOOD, "env": [{"name": name, "value": env_value}]}]}}}}

    [message] = check(no_plaintext_secrets, "kubernetes:apps/v1:Deployment", deployment(value))
    assert name in message and "hunter2" not in message and "sekrit" not in message
    twin = "postgres://db:5432/app?sslmode=disable" if "://" in value else ""
    assert check(no_plaintext_secrets, "kubernetes:apps/v1:Deployment", deployment(twin)) == []


# -- G: the environment a LaunchAgent may set -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["NODE_PATH", "NODE_OPTIONS", "GIT_SSH_COMMAND", "GIT_EXEC_PATH", "PERL5DB",
                                  "PERL5OPT", "RUBYOPT", "PYTHONSTARTUP", "PYTHONPATH", "LD_AUDIT",
                                  "DYLD_FRAMEWORK_PATH", "BASH_ENV", "ENV", "ZDOTDIR", "PROMPT_COMMAND",
                                  "JAVA_TOOL_OPTIONS", "EDITOR", "KUBECONFIG", "path"])
def test_a_launch_agent_sets_only_known_harmless_variables(check: Any, name: str) -> None:
    props = agent(["/bin/bash", f"{HOME}/bin/x", "agent"], environmentVariables={"PATH": "/usr/bin:/bin",
                                                                                 name: f"{HOME}/x"})
    [message] = check(launchagent_no_shell, AGENT, props, name="x-agent")
    assert f"sets {name}," in message and "load code" in message


def test_the_programs_own_environments_pass(check: Any) -> None:
    for environment in ({"HOME": HOME, "PATH": "/opt/homebrew/bin:/usr/bin:/bin:/usr/sbin:/sbin"},
                        {"PATH": "/opt/homebrew/bin:/opt/homebrew/opt/postgresql@18/bin:/usr/bin:/bin"},
                        {"LANG": "en_US.UTF-8", "LC_ALL": "C", "LC_CTYPE": "UTF-8", "TZ": "UTC", "TMPDIR": "/tmp/",
                         "USER": "erichblume", "LOGNAME": "erichblume", "LANGUAGE": "en"}, {}):
        props = agent(["/bin/bash", f"{HOME}/bin/x", "agent"], environmentVariables=environment)
        assert check(launchagent_no_shell, AGENT, props) == [], environment
