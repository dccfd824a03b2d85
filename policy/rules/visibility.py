"""`objects-visible-to-the-pack`: every Kubernetes object the program deploys reaches the pack as a resource.

The image, exposure, storage and security rules judge the objects they are shown. An object deployed another way
is judged by none of them, so the ways the pack cannot see through are refused, by what they do:

- a renderer whose objects never reach the pack as resources: only a `kubernetes:helm.sh/v4:Chart` (the engine
  registers each rendered object as the Chart's child, and `ops plan` renders them alike) and a
  `kubernetes:yaml/v2:ConfigGroup` holding its objects inline (`yaml`/`objs`, read by `rules.kinds`) are accepted.
  A v3 `Release` (Helm installs it in the cluster itself), a v3 `Chart` or v1 `yaml` ConfigGroup/ConfigFile
  (client-side components whose Python transformations rewrite objects after the pack saw their inputs), a
  ConfigFile or a ConfigGroup's `files` (read from disk or a URL by the provider), a kustomize Directory, and a v4
  Chart with a `postRenderer` (a program that rewrites the rendered objects) are violations;
- a host step that writes to the cluster: `kubectl` (also `oc`, `minikube kubectl --`), `helm` and `minikube
  addons` are read in every text of a `command:*` resource (rules/shell.py: by the value a word has, wherever it
  stands), and only the verbs that read or forward are accepted (`get`, `describe`, `logs`, `port-forward`, `config`
  ...). `kubectl apply -f - <<EOF`, `kubectl run --image`, `helm install`, a verb the pack cannot read: violations.
  No step of the program writes to the cluster: its objects are Pulumi resources.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from rules.host_steps import HostTexts, host_texts, is_host_step, tool_calls
from rules.kinds import parse_type
from rules.props import describe, key_of
from rules.shell import literal

# The renderers the pack sees through: (module, kind) in lower case.
VISIBLE_RENDERERS = frozenset({("helm.sh/v4", "chart"), ("yaml/v2", "configgroup")})
RENDERER_MODULES = ("helm.sh", "yaml", "kustomize")
READ_FROM_ELSEWHERE = ("files", "file", "directory", "path", "url", "urls")

KUBECTL_FAMILIES = frozenset({"kubectl", "oc", "kubecolor", "microk8s.kubectl", "k3s-kubectl"})
KUBECTL_VALUE_OPTIONS = frozenset({
    "-n", "--namespace", "--context", "--cluster", "--user", "--kubeconfig", "-s", "--server", "--token", "--as",
    "--as-group", "--as-uid", "--certificate-authority", "--client-certificate", "--client-key", "--request-timeout",
    "--tls-server-name", "--cache-dir", "-v", "--v", "--log-file", "--log-dir", "--profile", "--profile-output",
    "--username", "--password", "--vmodule"})
# What kubectl may be asked in a host step: reading the cluster, forwarding a port, its own kubeconfig.
KUBECTL_READS = frozenset({"get", "describe", "logs", "log", "explain", "version", "api-resources", "api-versions",
                           "cluster-info", "top", "wait", "diff", "events", "config", "completion", "kustomize",
                           "port-forward", "options", "help"})
KUBECTL_READ_SUBCOMMANDS = {"auth": frozenset({"can-i", "whoami"}), "plugin": frozenset({"list"})}
HELM_VALUE_OPTIONS = frozenset({"-n", "--namespace", "--kube-context", "--kubeconfig", "--registry-config",
                                "--repository-cache", "--repository-config", "--burst-limit", "--qps",
                                "--kube-apiserver", "--kube-as-user", "--kube-as-group", "--kube-ca-file",
                                "--kube-token", "--kube-tls-server-name"})
# What helm may do in a host step: render, show and fetch charts, read releases; never install or change one.
HELM_READS = frozenset({"template", "show", "inspect", "version", "list", "ls", "status", "get", "history",
                        "search", "lint", "env", "verify", "completion", "help", "dependency", "dep", "repo", "pull",
                        "fetch", "package", "create"})
MINIKUBE_VALUE_OPTIONS = frozenset({"-p", "--profile", "-n", "--node"})
WRITERS = KUBECTL_FAMILIES | frozenset({"helm", "minikube"})


def renderer_problem(resource_type: str, props: Any) -> str | None:
    token = parse_type(resource_type)
    if token.package != "kubernetes" or not token.module.startswith(RENDERER_MODULES):
        return None
    kind = token.name.lower()
    if (token.module, kind) not in VISIBLE_RENDERERS:
        return (f"is a {resource_type}, whose objects never reach the pack as resources of their own (the provider "
                "or a client-side transformation renders, reads or installs them): deploy a "
                "kubernetes:helm.sh/v4:Chart (its objects are registered as its children) or the objects themselves")
    if kind == "chart" and key_of(props, "postRenderer") is not None:
        return ("sets `postRenderer`, a program that rewrites the chart's objects after they were rendered: "
                "set what it changes in the chart's values, or deploy the objects themselves")
    if kind == "configgroup":
        for key in READ_FROM_ELSEWHERE:
            if key_of(props, key) not in (None, [], ""):
                return (f"reads its objects from `{key}` (files or URLs the provider opens), which the pack never "
                        "sees: put them inline in `yaml` or `objs`")
    return None


def _verb(host: HostTexts, rest: Sequence[str], value_options: frozenset[str]
          ) -> tuple[list[str] | None, Sequence[str]]:
    """(the values the subcommand word can take, None when the pack cannot read it; the words after it) past the
    global options; ([], []) when there is no subcommand."""
    index = 0
    while index < len(rest):
        word = rest[index]
        if word == "--" or word.startswith("-"):
            index += 2 if word in value_options else 1
            continue
        values = host.resolve(word)
        if not all(literal(value) for value in values):
            return None, rest[index + 1:]
        return [value.lower() for value in values], rest[index + 1:]
    return [], []


def cluster_write_problems(host: HostTexts) -> Iterator[str]:
    for call in tool_calls(host, WRITERS):
        where, words, index, rest = call.where, call.words, call.index, call.rest
        families = host.families(words[index])
        if call.handed:
            yield (f"`{where}` hands {'/'.join(sorted(families & WRITERS))} to `{words[0]}`, which supplies its "
                   "subcommand at run time: a host step writes no object to the cluster; name the subcommand")
            continue
        if not rest:
            continue
        if families & KUBECTL_FAMILIES:
            verbs, after = _verb(host, rest, KUBECTL_VALUE_OPTIONS)
            sub, _ = _verb(host, after, KUBECTL_VALUE_OPTIONS) if verbs else ([], [])
            bad = [verb for verb in verbs or [] if verb not in KUBECTL_READS and not (
                verb in KUBECTL_READ_SUBCOMMANDS and sub and all(s in KUBECTL_READ_SUBCOMMANDS[verb] for s in sub))]
            if verbs is None or bad:
                shown = "a subcommand the pack cannot read" if verbs is None else f"`kubectl {bad[0]}`"
                yield (f"`{where}` runs {shown} ({' '.join(words[index:index + 4])[:100]}): a host step writes "
                       "no object to the cluster, where the pack would never judge it (its images, exposure, "
                       "security); declare the object as a Pulumi resource")
        if "helm" in families:
            verbs, _after = _verb(host, rest, HELM_VALUE_OPTIONS)
            bad = [verb for verb in verbs or [] if verb not in HELM_READS]
            if verbs is None or bad:
                shown = "a subcommand the pack cannot read" if verbs is None else f"`helm {bad[0]}`"
                yield (f"`{where}` runs {shown}: a host step installs no chart, whose objects the pack would "
                       "never see; deploy a kubernetes:helm.sh/v4:Chart")
        if "minikube" in families:
            verbs, after = _verb(host, rest, MINIKUBE_VALUE_OPTIONS)
            lowered = [value.lower() for value in after]
            if (verbs and "addons" in verbs and lowered[:1] and lowered[0] in ("enable", "configure")) or (
                    verbs and "start" in verbs and any(value.startswith("--addons") for value in lowered)):
                yield (f"`{where}` enables minikube addons, which deploy objects (and images) the pack never "
                       "sees: deploy what the addon would as Pulumi resources")


def validate_visibility(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    subject = describe(args.resource_type, args.name, args.props)
    problem = renderer_problem(args.resource_type, args.props)
    if problem:
        report_violation(f"{subject} {problem}.", None)
    if not is_host_step(args.resource_type):
        return
    host = host_texts(args.resource_type, args.props)
    for message in cluster_write_problems(host):
        report_violation(f"{subject}: {message}.", None)
    if host.unknown is not None:
        raise host.unknown


objects_visible_to_the_pack = ResourceValidationPolicy(
    name="objects-visible-to-the-pack",
    description=(
        "Every Kubernetes object reaches the pack as a resource: no Helm v3 Release, v1 yaml or kustomize renderer, "
        "ConfigGroup files or chart postRenderer, and no host step that writes to the cluster (kubectl apply/create/"
        "run, helm install, minikube addons)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate_visibility,
)

POLICIES = [objects_visible_to_the_pack]
