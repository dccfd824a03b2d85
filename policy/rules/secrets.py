"""`no-plaintext-secrets`: secret values stay out of command strings and plain text.

What can be judged is where a secret-looking value sits, and (for a command's `stdin` and
`environment`) whether the engine sent it marked secret (rules/wire.py):

- a remote/local command's `create`/`update`/`delete` string (pulumi-command prints these in errors
  and logs; secrets belong on stdin) must not carry a password, private key, auth key, token,
  credentials in a URL, a secret-named assignment (`PGPASSWORD=...`, `API_TOKEN=...`) or a password
  flag (`--password x`, `--root-passwd=x`, `--token x`, `mysql -px`, `sshpass -p x`, `curl -u u:p`);
- its `stdin` and `environment` may carry them only when marked secret (`pulumi.Output.secret`):
  a plain one is stored in plain text in the state and shown in every diff;
- a LaunchAgent's arguments and environment are written to a 0644 plist: never a secret there;
- a ConfigMap (stored and shown in plain text) must not carry them either;
- a container's `command`/`args` must not, and an env var (in any `env` list at any depth: pod specs
  and chart values) whose name says it is a secret (`*PASSWORD*`, `*SECRET*`, `*TOKEN*`, ...) must come
  from `valueFrom.secretKeyRef`, not a literal `value`;
- a Secret's `stringData` must not hold a well-known default (`admin`, `changeme`, `postgres`, ...),
  and its `data` must be base64 (plain text there is a bug that also leaks in diffs).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from rules.kinds import is_command, parse_type
from rules.props import describe, format_path, get, get_str, is_list, is_mapping, str_items
from rules.wire import secret_marked
from rules.workloads import ENV_LIST, container_owner, containers, fields

COMMAND_FIELDS = ("create", "update", "delete")
LAUNCH_AGENT = "blumeops:host:LaunchAgent"

class _Anchored:
    """A pattern searched only around the matches of a cheaper one (`:5432:db:user:` for a .pgpass line): the full
    pattern starts with a class every position of a long script would try."""

    def __init__(self, anchor: re.Pattern[str], full: re.Pattern[str], reach: int = 256) -> None:
        self.anchor, self.full, self.reach = anchor, full, reach

    def search(self, text: str) -> re.Match[str] | None:
        for match in self.anchor.finditer(text):
            found = self.full.search(text, max(0, match.start() - self.reach), match.end() + self.reach)
            if found:
                return found
        return None


# `$VAR`, `"$(cat f)"` and `<placeholder>` are not literals; bash's quoted strings `$'...'` and `$"..."` are.
_NOT_A_LITERAL = r"""(?!["']?\$(?!['"]))(?!["']?<)"""
# Each: what it finds, words every match of it holds (compared with the text lowercased: a pattern that ignores
# case spells them in any case, the others hold them as written), the pattern. A text with none of the words
# cannot match, so it is not searched: a host step's script is a megabyte a plan, which a pattern that ignores
# case reads at some 50 MB/s. No words: always searched.
SECRET_PATTERNS: tuple[tuple[str, tuple[str, ...], re.Pattern[str] | _Anchored], ...] = (
    ("a PGPASSWORD= assignment", ("pgpassword=",),
     re.compile(r"\bPGPASSWORD=" + _NOT_A_LITERAL + r"\S", re.IGNORECASE)),
    ("a password= assignment", ("password", "passwd", "pwd"),
     re.compile(r"\b(?:password|passwd|pwd)\s*=\s*" + _NOT_A_LITERAL + r"[^\s&;'\"]", re.IGNORECASE)),
    ("a password or token flag (--password, --token, --root-passwd ...)",
     ("pass", "pwd", "token", "secret", "key", "credential"),
     re.compile(r"(?<![\w-])--(?:[a-z0-9]+-)*(?:password|passwd|pass|pwd|token|secret|api-?key|auth-?key|passphrase"
                r"|credentials?)(?:=|\s+)" + _NOT_A_LITERAL + r"[^\s-]", re.IGNORECASE)),
    ("a password flag of mysql/mariadb (-p<password>)", ("mysql", "mariadb"),
     re.compile(r"\b(?:mysql|mysqldump|mysqladmin|mariadb|mariadb-dump)\b[^;|&\n]*?\s-p(?!\s)" + _NOT_A_LITERAL
                + r"[^\s-]", re.IGNORECASE)),
    ("a password flag (sshpass -p, redis-cli -a)", ("sshpass", "redis-cli"),
     re.compile(r"\b(?:sshpass\b[^;|&\n]*?\s-p|redis-cli\b[^;|&\n]*?\s-a)\s*" + _NOT_A_LITERAL + r"[^\s-]",
                re.IGNORECASE)),
    ("a user:password flag (-u/--user user:password)", ("-u",),
     # the user never starts with + or %: `date -u +%Y-%m-%dT%H:%M:%SZ` is a format, not a login
     re.compile(r"(?<![\w-])(?:-u|--user|--proxy-user)(?:=|\s+)[\"']?(?![+%])[^\s:\"'$]+:" + _NOT_A_LITERAL
                + r"[^\s\"']",
                re.IGNORECASE)),
    # YAML (`password: x`), JSON (`"password": "x"`), TOML and ini with a quoted value (`password = "x"`): the
    # unquoted `=` form is the assignment above (one finding per place). An empty value, null, a `$REF`,
    # `<placeholder>` or `{{ tmpl }}` is not a literal; `passwordKey:`, `password_file:` name one, they do not hold it.
    ("a password in a config file (password: ..., \"password\": \"...\", password = \"...\")", ("pass",),
     re.compile(r"""(?:^|[{,])[ \t]*["']?[\w.-]*(?:password|passwd|passphrase)["']?"""
                r"""(?:[ \t]*:[ \t]*["']?|[ \t]*=[ \t]*["'])""" + _NOT_A_LITERAL
                + r"""(?!\{\{)(?!(?:null|~|true|false)\b)[^\s"'#,}{\]\[|>-]""",
                re.IGNORECASE | re.MULTILINE)),
    # libpq's password file: host:port:database:user:password, anywhere in a text (a line of its own, a quoted value
    # `PGPASS_LINES='h:5432:*:u:pw'`, a heredoc): exactly five fields, the host a name (with a letter), `*` or an IPv4
    # address, the port a number or `*`, the password not a placeholder. A time (12:30:00) has a number for a host,
    # an IPv6 address more than five fields, and `a:b:c:d:e` no port.
    ("a .pgpass line (host:port:database:user:password)", (), _Anchored(
        re.compile(r":(?:[0-9]{1,5}|\*):[^:\s'\"]+:[^:\s'\"]+:"),
        re.compile(r"(?<![\w.*:/@-])(?:\*|[A-Za-z0-9._-]*[A-Za-z][A-Za-z0-9._-]*|[0-9]{1,3}(?:\.[0-9]{1,3}){3})"
                   r":(?:[0-9]{1,5}|\*):[^:\s'\"]+:[^:\s'\"]+:"
                   r"(?![$<*{\s'\"]|\.\.\.)(?:\\:|[^:\s'\"])+(?![\w:])"))),
    ("a private key", (), re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")),
    ("a Tailscale key (tskey-...)", ("tskey-",), re.compile(r"\btskey-[A-Za-z0-9-]+")),
    ("a GitHub token", ("ghp_", "gho_", "ghs_", "github_pat_"),
     re.compile(r"\b(?:ghp|gho|ghs|github_pat)_[A-Za-z0-9_]{20,}")),
    ("credentials in a URL (scheme://user:password@)", ("://",),
     # the user may be empty (`redis://:password@host`)
     re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:" + _NOT_A_LITERAL + r"[^/\s@]+@")),
)
# MYSQL_PWD, DB_PASS, REDIS_PASS, linuxserver's PASS: a segment PASS or PWD is a password too; the shell's own
# PWD/OLDPWD (the working directory) are not (SECRET_ENV_EXEMPT_NAMES).
SECRET_ENV_NAME = re.compile(r"(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIALS?"
                             r"|(?:^|_)(?:PASS|PWD|CREDS?)(?:_|$))", re.IGNORECASE)
# Names that point at a secret or describe it rather than hold it (DB_PASSWORD_FILE, OAUTH_TOKEN_URL).
SECRET_ENV_EXEMPT_SUFFIXES = ("_FILE", "_PATH", "_DIR", "_NAME", "_KEY_REF", "_SECRET_NAME", "_URL", "_URI",
                              "_ENDPOINT", "_HOST", "_PORT", "_USER", "_USERNAME", "_ID", "_TTL", "_LENGTH", "_TYPE",
                              "_MODE")
# Names that hold the *name* of a Secret, not a secret: tailscale-operator's chart sets OPERATOR_SECRET=operator
# (the Secret the operator keeps its state in).
SECRET_ENV_EXEMPT_NAMES = frozenset({"OPERATOR_SECRET", "PWD", "OLDPWD"})
WELL_KNOWN_DEFAULTS = frozenset(
    {"admin", "changeme", "change-me", "password", "passw0rd", "postgres", "secret", "root", "test", "default",
     "123456"}
)


_ASSIGNMENT = re.compile(r"(?<![\w./-])([A-Za-z_][A-Za-z0-9_]*)=(\S*)")


def secret_name(name: str) -> bool:
    """A variable name that says it holds a secret (`DB_PASSWORD`, `api_token`), but not a name that
    points at one (`*_FILE`, `*_PATH`, `*_SECRET_NAME`, ...)."""
    return (bool(SECRET_ENV_NAME.search(name)) and not name.upper().endswith(SECRET_ENV_EXEMPT_SUFFIXES)
            and name.upper() not in SECRET_ENV_EXEMPT_NAMES)


def literal(value: str) -> bool:
    """A value written out, not a reference: `$VAR`, `"$(cat f)"`, `<placeholder>` and '' are not literals;
    bash's ANSI-C and locale strings (`$'...'`, `$"..."`) are, as the program's preamble writes secrets."""
    stripped = value.strip()
    if stripped.startswith(("$'", '$"')):
        return len(stripped.strip("$'\"")) > 0
    stripped = stripped.lstrip("\"'")
    return bool(stripped) and not stripped.startswith(("$", "<"))


# The secret-named assignment needs one of SECRET_ENV_NAME's words in its name.
_ASSIGNMENT_WORDS = ("pass", "pwd", "secret", "token", "key", "cred")


def secret_findings(text: str) -> list[str]:
    low = text.lower()
    found = [what for what, words, pattern in SECRET_PATTERNS
             if (not words or any(word in low for word in words)) and pattern.search(text)]
    if not any(word in low for word in _ASSIGNMENT_WORDS):
        return found
    for match in _ASSIGNMENT.finditer(text):
        if secret_name(match[1]) and literal(match[2]):
            what = f"a secret-named assignment ({match[1]}=...)"
            if what not in found and not (match[1].upper() == "PGPASSWORD" and "a PGPASSWORD= assignment" in found):
                found.append(what)
    return found


PLAIN_FIX = "send secrets on stdin marked secret (`pulumi.Output.secret`)"


def command_problems(props: Any) -> Iterator[str]:
    for field_name in COMMAND_FIELDS:
        text = get_str(props, field_name)
        if text:
            for what in secret_findings(text):
                yield (
                    f"`{field_name}` contains {what}: the command string is shown in logs and error messages; "
                    f"{PLAIN_FIX}"
                )
    stdin = get(props, "stdin")
    if isinstance(stdin, str) and not secret_marked("stdin"):
        for what in secret_findings(stdin):
            yield (
                f"`stdin` contains {what} but is not marked secret, so it is stored in plain text in the state "
                "and shown in diffs: wrap it in `pulumi.Output.secret(...)`"
            )
    for name, what in environment_findings(props, "environment"):
        yield (f"`environment.{name}` holds {what} but is not marked secret, so it is stored in plain text "
               f"in the state and shown in diffs: {PLAIN_FIX}")
    triggers = get(props, "triggers")
    if is_list(triggers):  # a step's identity: stored plain in the state, shown in every diff and replace
        for path, key, value in _leaves(triggers, ("triggers",)):
            if secret_marked(*path):
                continue
            findings = secret_findings(value)
            if key is not None and literal(value) and secret_value_key(key):
                findings.insert(0, f"a value for the secret-named key {key}")
            for what in findings:
                yield (f"`{format_path(path)}` contains {what}: triggers are the step's identity, stored in plain "
                       f"text in the state and shown in every diff; trigger on a digest of it, and {PLAIN_FIX}")


def _leaves(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str | None, str]]:
    """(path, the key holding it or None, string) of every string at any depth of lists and mappings."""
    stack: list[tuple[Any, tuple[str | int, ...], str | None]] = [(value, path, None)]
    while stack:
        current, at, key = stack.pop()
        if isinstance(current, str):
            yield at, key, current
        elif is_mapping(current):
            stack.extend((current[name], (*at, str(name)), str(name)) for name in reversed(list(current)))
        elif is_list(current):
            stack.extend((current[index], (*at, index), key) for index in reversed(range(len(current))))


def environment_findings(props: Any, key: str) -> Iterator[tuple[str, str]]:
    """(variable, what) for each unmarked value of the map ``key`` that holds a secret, or a literal value
    of a secret-named variable."""
    environment = get(props, key)
    if not is_mapping(environment):
        return
    for name in list(environment):
        value = environment[name]
        if not isinstance(value, str) or secret_marked(key, name):
            continue
        findings = secret_findings(value)
        if secret_name(str(name)) and literal(value):
            findings.insert(0, "a value for a secret-named variable")
        for what in findings:
            yield str(name), what


def launch_agent_problems(props: Any) -> Iterator[str]:
    """A LaunchAgent's plist is a 0644 file in ~/Library/LaunchAgents: no secret typed into the program
    belongs there. A value marked secret came from the stack's secrets, and `ops plan` fails when one of
    those shows up in the rendered plist; the pack leaves it to that check."""
    arguments = [argument for index, argument in enumerate(str_items(get(props, "programArguments")))
                 if not secret_marked("programArguments", index)]
    for what in secret_findings(" ".join(arguments)):
        yield (f"programArguments contain {what}: the plist is world-readable; let the program read the secret "
               "from a 0600 file")
    for name, what in environment_findings(props, "environmentVariables"):
        yield (f"environmentVariables.{name} holds {what}: the plist is world-readable; point the program "
               "at a 0600 file instead")


def config_map_problems(props: Any) -> Iterator[str]:
    data = get(props, "data")
    if is_mapping(data):
        for key in data:
            value = get_str(data, key)
            if value:
                for what in secret_findings(value):
                    yield f"data.{key} contains {what}: put it in a Secret and reference it"


def env_problems(resource_type: str, props: Any) -> Iterator[str]:
    """Literal secret-named env values in any env list at any depth, and secrets in container commands."""
    for label, container in containers(resource_type, props):
        words = [*str_items(get(container, "command")), *str_items(get(container, "args"))]
        for what in secret_findings(" ".join(words)):
            yield (f"{label} has {what} in its command/args: pass it as an env var from "
                   "`valueFrom.secretKeyRef`")
    for entry in fields(resource_type, props):
        if entry.unknown is not None or not ENV_LIST.search(entry.name) or not is_list(entry.value):
            continue
        owner = container_owner(entry) or format_path(entry.path)
        for item in entry.value:
            if not is_mapping(item):
                continue
            name = get_str(item, "name") or ""
            value = get_str(item, "value")
            if secret_name(name) and value:
                yield (f"{owner} sets env {name} to a literal value: use `valueFrom.secretKeyRef` so the secret "
                       "lives in a Secret")
            elif value:  # DATABASE_URL=postgres://u:pw@h/db: its name says URL, its value holds a password
                for what in secret_findings(value):
                    yield (f"{owner} sets env {name} to a value holding {what}: use `valueFrom.secretKeyRef` so the "
                           "secret lives in a Secret")


HELM_KINDS = frozenset({"chart", "release"})
_SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "token", "apikey", "privatekey", "credential", "creds")
# Keys that name or point at a secret rather than hold one: existingSecret, secretName, passwordKey,
# tokenSecretRef, passwordFile, createSecret, tokenTTL ...
_POINTER_PREFIXES = ("existing", "create", "use", "enable", "generate")
_POINTER_SUFFIXES = ("name", "ref", "key", "file", "path", "dir", "enabled", "length", "ttl", "policy", "mount",
                     "volume", "annotations", "labels", "type", "namespace")


def secret_value_key(name: str) -> bool:
    """A Helm value key that holds a secret (`adminPassword`, `clientSecret`, `api_token`), not one that
    names or points at one (`existingSecret`, `secretName`, `passwordKey`)."""
    folded = name.lower().replace("_", "").replace("-", "")
    if folded.startswith(_POINTER_PREFIXES):
        return False
    if folded.endswith(_POINTER_SUFFIXES) and not folded.endswith(("apikey", "privatekey", "secretkey")):
        return False
    return any(word in folded for word in _SECRET_WORDS)


def helm_value_problems(resource_type: str, props: Any) -> Iterator[str]:
    """A chart's values are stored in the state and shown in diffs: a secret there must be marked secret."""
    for entry in fields(resource_type, props):
        if entry.unknown is not None or not entry.path or entry.path[0] != "values":
            continue
        if (isinstance(entry.value, str) and literal(entry.value) and secret_value_key(entry.key)
                and not secret_marked(*[step for step in entry.path if not str(step).startswith("<")])):
            yield (f"{format_path(entry.path)} holds a secret that is not marked secret, so it is stored in "
                   "plain text in the state and shown in diffs: pass it with `pulumi.Output.secret(...)` or "
                   "point the chart at an existing Secret")


def secret_literal_problems(props: Any) -> Iterator[str]:
    string_data = get(props, "stringData")
    if is_mapping(string_data):
        for key in string_data:
            value = get_str(string_data, key)
            if value is not None and value.strip().lower() in WELL_KNOWN_DEFAULTS:
                yield f"stringData.{key} is the well-known default {value!r}: generate it or take it from stack secrets"
    data = get(props, "data")
    if is_mapping(data):
        for key in data:
            value = get_str(data, key)
            if value is None:
                continue
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                yield f"data.{key} is not base64: put plain text in `stringData` (and from a secret), not `data`"


def validate_no_plaintext_secrets(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    problems: list[str] = []
    kind = parse_type(args.resource_type).kind
    if is_command(args.resource_type):
        problems.extend(command_problems(args.props))
    elif args.resource_type.lower() == LAUNCH_AGENT.lower():
        problems.extend(launch_agent_problems(args.props))
    elif kind == "configmap":
        problems.extend(config_map_problems(args.props))
    elif kind == "secret":
        problems.extend(secret_literal_problems(args.props))
    else:
        problems.extend(env_problems(args.resource_type, args.props))
        if kind in HELM_KINDS and parse_type(args.resource_type).package == "kubernetes":
            problems.extend(helm_value_problems(args.resource_type, args.props))
    for problem in problems:
        report_violation(f"{describe(args.resource_type, args.name, args.props)}: {problem}.", None)


no_plaintext_secrets = ResourceValidationPolicy(
    name="no-plaintext-secrets",
    description=(
        "No secret values in command strings, plain (unmarked) command stdin/environment, LaunchAgent plists, "
        "ConfigMaps, container args or literal env values; Secrets hold no well-known defaults and only base64 "
        "in `data`."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate_no_plaintext_secrets,
)

POLICIES = [no_plaintext_secrets]
