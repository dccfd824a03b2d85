"""The parsers of blumeops settings: a raw config value (a string, as the engine hands it over) -> a typed
value, or ``InvalidValueError`` saying what is wrong (quoting the tool's own rule where there is one). Nothing
here reads config or knows a setting's key: ``phases/settings.py`` declares the settings with these and loads
them, and re-exports every parser, so a phase module writes ``s.setting(s.text, ...)``."""

from __future__ import annotations

import base64
import binascii
import json
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from components.host import RegistryMirror
from components.host.launch_agent import path_problem

# The migration's phase ids, in order. The registry in phases/__init__.py carries their titles and
# modules; settings only needs to know which ids exist and how they are ordered.
PHASE_IDS: tuple[str, ...] = ("0", "1", "2", "3", "4", "5", "5.1", "6", "7", "8", "9")


def phase_index(phase_id: str, ids: Sequence[str] = PHASE_IDS) -> int:
    return list(ids).index(phase_id)


Parser = Callable[[Any], Any]


class InvalidValueError(ValueError):
    """A value that does not parse; the message says what was expected (and whose rule it is)."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def text(raw: Any) -> str:
    """One line of text: no control characters (NUL, newline, ...), surrounding blanks ignored."""
    if not isinstance(raw, str):
        raise InvalidValueError("expected a string")
    value = raw.strip()
    if not value:
        raise InvalidValueError("must not be empty")
    if _CONTROL.search(value):
        raise InvalidValueError("contains a control character (a NUL, a newline or a tab); write it on one line")
    return value


def multiline_secret(raw: Any) -> str:
    """A secret that spans lines (a private key, a kubeconfig): newlines allowed, NUL and other controls not."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidValueError("must not be empty")
    if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", raw):
        raise InvalidValueError("contains a control character other than a newline")
    return raw


def _structured(value: str) -> str | None:
    """'a list' / 'a map' when a value that should be a scalar arrived as structured config (JSON)."""
    if value[:1] in "[{":
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return None
        if isinstance(parsed, list):
            return "a list"
        if isinstance(parsed, dict):
            return "a map"
    return None


def _segments(value: str) -> list[str]:
    """A path's segments, ``//`` and ``/.`` dropped: how the kernel reads it."""
    return [part for part in value.split("/") if part not in ("", ".")]


def absolute_path(raw: Any) -> str:
    """An absolute path, normalised (``//`` collapsed, ``/.`` and a trailing ``/`` dropped); ``..`` is refused."""
    value = text(raw)
    shape = _structured(value)
    if shape is not None:
        raise InvalidValueError(f"is {shape}, expected one absolute path (e.g. /Users/erichblume/...)")
    if value.startswith("~") or "$" in value:
        raise InvalidValueError(
            f"{value!r} uses ~ or a variable; launchd and non-interactive SSH expand neither,"
            " so write the absolute path (e.g. /Users/erichblume/...)"
        )
    if not value.startswith("/"):
        raise InvalidValueError(f"{value!r} is relative; write the absolute path")
    if ".." in value.split("/"):
        raise InvalidValueError(f"{value!r} contains '..'; write the path without it")
    return "/" + "/".join(_segments(value))


_TOOL_PATH = re.compile(r"^(/[A-Za-z0-9._+@-]+)+$")
# Directories of programs: a tool path naming one is missing its program's name.
_BIN_DIRS = frozenset({"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/opt/homebrew/bin",
                       "/opt/homebrew/sbin"})


def tool_path(raw: Any) -> str:
    """An absolute path of an executable, and nothing more: letters, digits and ``._+@-`` between slashes.
    A tool path is a program's name, never a command: it goes into LaunchAgents' ProgramArguments, an agent's
    PATH (so no ':'), and the argv of the operator's own tools; a space, a quote, ``;|&`` or a second word
    would make it something else."""
    value = text(raw)
    if value.endswith("/") or value.endswith("/."):
        raise InvalidValueError(f"{value!r} is a directory; write the path of the program")
    normal = absolute_path(value)
    if ":" in value:
        raise InvalidValueError(f"{value!r} contains ':', which separates entries of PATH; "
                                "install or link the tool where its path has none")
    if normal != value or not _TOOL_PATH.match(value):
        raise InvalidValueError(
            f"{value!r} is not a plain path of a program (only letters, digits and ._+@- between slashes; no "
            "spaces, quotes, ;|&$` or arguments): link the tool from such a path (`ln -s`) and name the link")
    if _key(value) in _BIN_DIRS or _shared(value, home_shared=False) is not None:
        raise InvalidValueError(f"{value!r} is a directory; write the path of the program")
    return value


# What a step must never write, replace, chmod, remove or copy elsewhere, whatever a setting says: the operator's
# keys and credentials, the shells' and launchd's startup files, the system's directories. Compared case-folded:
# APFS, indri's disk, ignores case (~/.SSH is ~/.ssh).
_SECRET_DIRS = frozenset({".ssh", ".gnupg", ".aws", ".kube", ".minikube", ".docker", ".borg", ".password-store",
                          ".netrc", ".git-credentials"})
_SHELL_FILES = frozenset({".zshrc", ".zshenv", ".zprofile", ".zlogin", ".zlogout", ".bashrc", ".bash_profile",
                          ".bash_login", ".bash_logout", ".profile", ".login", ".cshrc", ".tcshrc", ".kshrc"})
# Below a home directory (case-folded segments -> what lives there).
_HOME_SECRETS: Mapping[tuple[str, ...], str] = {
    ("library", "launchagents"): "where launchd finds the programs it starts at login",
    ("library", "keychains"): "where the operator's keychains live",
    (".config", "gh"): "where the GitHub CLI keeps its token",
    (".config", "fish"): "fish's startup files",
    (".config", "nushell"): "nushell's startup files",
    (".config", "powershell"): "PowerShell's startup files",
}
# A home directory's own directories, which every program of the user shares (and which hold the above).
_HOME_SHARED = frozenset({"applications", "desktop", "documents", "downloads", "library", "movies", "music",
                          "pictures", "public", ".config", ".local", ".cache"})
_HOME_ANCESTORS = frozenset(entry[:length] for entry in _HOME_SECRETS for length in range(1, len(entry)))
_SYSTEM_DIRS = ("/etc", "/private", "/System", "/usr", "/bin", "/sbin", "/var", "/dev", "/tmp", "/Library",
                "/Applications", "/cores")
_SHARED_DIRS = frozenset({"/", "/Users", "/home", "/opt", "/Volumes", "/tmp", "/private/tmp", "/var/tmp",
                          "/opt/homebrew", "/usr/local", "/opt/homebrew/var", "/usr/local/var"})
_PACKAGE_PREFIXES = ("/usr/local", "/opt/homebrew")


def _key(value: str) -> str:
    """What the path is on indri's disk: normalised and case-folded (for comparisons only)."""
    return "/" + "/".join(part.casefold() for part in _segments(value))


def _below_home(value: str) -> tuple[str, ...] | None:
    """The case-folded segments below a home directory (/Users/<name>/...), None outside one."""
    parts = _key(value).split("/")[1:]
    return tuple(parts[2:]) if len(parts) >= 2 and parts[0] in ("users", "home") else None


def within(inner: str, outer: str) -> bool:
    """Whether ``inner`` is ``outer`` or below it, as the disk sees them (normalised, case-folded)."""
    inner_key, outer_key = _key(inner), _key(outer)
    return inner_key == outer_key or inner_key.startswith(outer_key.rstrip("/") + "/")


def _sensitive(value: str) -> str | None:
    parts = _key(value).split("/")[1:]
    hidden = next((part for part in parts if part in _SECRET_DIRS), None)
    if hidden is not None:
        where = hidden if parts[-1] == hidden else f"inside {hidden}"
        return f"it is {where}, where the operator's keys and credentials live"
    below = _below_home(value)
    entry = next((entry for entry in _HOME_SECRETS if below is not None and below[:len(entry)] == entry), None)
    if entry is not None:
        spelled = "/".join(_segments(value)[2:2 + len(entry)])
        return f"it is inside ~/{spelled}, {_HOME_SECRETS[entry]}"
    if parts[-1] in _SHELL_FILES:
        return f"{_segments(value)[-1]} is a shell's startup file"
    key = _key(value)
    system = next((prefix for prefix in _SYSTEM_DIRS if within(key, prefix)), None)
    if system is not None and not any(within(key, prefix) for prefix in _PACKAGE_PREFIXES):
        return f"it is under {system}, the system's own"
    return None


def _shared(value: str, home_shared: bool = True) -> str | None:
    """Why ``value`` is a directory others share (None when it is not): ``/``, ``/tmp``, a home directory or
    one of its own directories (``home_shared``; those above the operator's keys always)."""
    below = _below_home(value)
    if _key(value) in {path.casefold() for path in _SHARED_DIRS}:
        return "a directory other programs share"
    if below == ():
        return "a home directory itself"
    if below is not None and (below in _HOME_ANCESTORS or (home_shared and below[0] in _HOME_SHARED
                                                              and len(below) == 1)):
        return f"~/{'/'.join(_segments(value)[2:])} is a directory every program of the user shares"
    return None


def owned_file(raw: Any) -> str:
    """The absolute path of a file a step writes (and its delete removes): never the operator's keys, a
    shell's startup file or a system file."""
    value = absolute_path(raw)
    shared = _shared(value)
    problem = _sensitive(value) or (shared and f"it is {shared}")
    if problem:
        raise InvalidValueError(f"{value!r} is not a file blumeops may write: {problem}; "
                                "name a path of its own (the default shows where)")
    return value


def owned_dir(raw: Any) -> str:
    """The absolute path of a directory a step creates, writes into or chmods: never a shared directory
    (``/``, ``/tmp``, a home directory itself or its Documents: a step's ``chmod 0700`` would lock others out),
    the operator's keys or a system directory."""
    value = absolute_path(raw)
    problem = _shared(value) or _sensitive(value)
    if problem is not None:
        raise InvalidValueError(f"{value!r} is not a directory blumeops may own: {problem}; name a directory of "
                                "its own below it (the default shows where)")
    return value


def removable_dir(raw: Any) -> str:
    """A directory a step removes (``rm -rf``): one it may own (``owned_dir``), and a service's own: not a
    directory that holds every program's (``~/Library/Logs``, ``~/.local/share``) nor, under Homebrew's
    prefix, anything but a service's directory below ``var/`` (``/opt/homebrew/var/forgejo``)."""
    value = owned_dir(raw)
    below, key = _below_home(value), _key(value)
    prefix = next((prefix for prefix in _PACKAGE_PREFIXES if within(key, prefix)), None)
    problem = None
    if below is not None and len(below) == 2 and below[0] in ("library", ".local"):
        problem = f"~/{'/'.join(_segments(value)[2:])} holds every program's files"
    elif prefix is not None:
        rest = key[len(prefix) + 1:].split("/")
        if len(rest) < 2 or rest[0] != "var" or rest[1] in ("log", "run", "homebrew"):
            problem = (f"under {prefix} only a service's own directory below var/ is data "
                       f"(e.g. {prefix}/var/forgejo)")
    if problem is not None:
        raise InvalidValueError(f"{value!r} is not a directory blumeops may remove: {problem}; name the retired "
                                "service's own data directory")
    return value


def copied_dir(raw: Any) -> str:
    """A directory a step reads and copies elsewhere (to the NAS, into a cluster claim or an image): never one
    that holds the operator's keys or others' files (``/``, ``/tmp``, a home directory itself, ``~/Library``,
    ``/opt/homebrew``), nor the keys themselves: a copy would carry them out (to the NAS world-readable)."""
    value = absolute_path(raw)
    problem = _shared(value, home_shared=False) or _sensitive(value)
    if problem is not None:
        raise InvalidValueError(f"{value!r} is not a directory blumeops may copy: {problem}; name the legacy "
                                "service's own directory (the default shows where)")
    return value


_PRINTERS = frozenset({"echo", "printf"})
_SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "fish", "csh", "tcsh"})


def passcommand(raw: Any) -> str:
    """A command that prints a passphrase it READS (a 0600 file, the keychain, a password manager), its program
    an absolute path (the SSH shell has no Homebrew on PATH). Never one that prints a literal (echo, printf,
    a here-string): the passphrase would sit in the stack config, the plan and borgmatic's config."""
    value = text(raw)
    try:
        words = shlex.split(value)
    except ValueError:
        raise InvalidValueError("is not one command line (an unbalanced quote)") from None
    problem = path_problem(words[0]) if words else "is empty"
    if problem:
        raise InvalidValueError(f"its program {problem}: write it as an absolute path (e.g. /bin/cat <file>)")
    name = words[0].rsplit("/", 1)[-1]
    if name == "env":  # /usr/bin/env [-i] [NAME=value ...] program ...
        name = next((word for word in words[1:] if "=" not in word and not word.startswith("-")), "")
        name = name.rsplit("/", 1)[-1]
    scripts = " ".join(words[1:]) if name in _SHELLS else ""
    in_script = {word.rsplit("/", 1)[-1] for word in re.split(r"[\s;|&()]+", scripts)}
    if "<<" in value or name in _PRINTERS or in_script & _PRINTERS:
        # the value is not quoted: it holds the passphrase
        raise InvalidValueError(
            "prints a passphrase written in the command (echo, printf or a here-string), which would sit in the "
            "stack config, the plan and borgmatic's config: store it in the keychain (`security "
            "add-generic-password -s borg -w`) and read it with `/usr/bin/security find-generic-password -s borg "
            "-w`, or in a 0600 file read with `/bin/cat <file>`")
    return value


def integer(raw: Any, low: int, high: int, rule: str = "") -> int:
    if isinstance(raw, bool):
        raise InvalidValueError(f"expected a whole number from {low} to {high}")
    try:
        value = int(str(raw).strip(), 10)
    except ValueError:
        raise InvalidValueError(f"{raw!r} is not a whole number from {low} to {high}") from None
    if not low <= value <= high:
        raise InvalidValueError(f"{value} is outside {low}..{high}{rule}")
    return value


def port(raw: Any) -> int:
    return integer(raw, 1, 65535)


def count(low: int, high: int, rule: str = "") -> Parser:
    """A whole number in ``low..high``; ``rule`` cites whose minimum it is (shown when out of range)."""
    return lambda raw: integer(raw, low, high, rule)


def boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in ("true", "yes", "1"):
        return True
    if value in ("false", "no", "0"):
        return False
    raise InvalidValueError(f"{raw!r} is not true or false")


def phase_id(raw: Any, ids: Sequence[str] = PHASE_IDS) -> str:
    """A phase id exactly as the registry spells it (no blanks: the plan tool and the engine must agree);
    ``ids``: the registry's ids, in order (the homelab's phase table unless a test registers more)."""
    value = str(raw)
    if value not in ids:
        raise InvalidValueError(f"{value!r} is not a phase id; use one of {', '.join(ids)}")
    return value


HOST_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")


def _ssh_strings(blob: bytes) -> list[bytes]:
    """The RFC 4253 ``string`` fields of a public key blob; raises when a length runs past the end."""
    fields = []
    offset = 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            raise ValueError("truncated")
        length = int.from_bytes(blob[offset : offset + 4], "big")
        offset += 4
        if offset + length > len(blob):
            raise ValueError("truncated")
        fields.append(blob[offset : offset + length])
        offset += length
    return fields


def host_key(raw: Any) -> str:
    value = text(raw)
    parts = value.split()
    # Accept a whole `ssh-keyscan` line ("indri ssh-ed25519 AAAA...") as well as "ssh-ed25519 AAAA...".
    if len(parts) == 3 and parts[0] not in HOST_KEY_TYPES:
        parts = parts[1:]
    expected = "expected '<type> <base64>' as printed by `ssh-keyscan`"
    if len(parts) != 2 or parts[0] not in HOST_KEY_TYPES:
        raise InvalidValueError(expected)
    key_type, encoded = parts
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidValueError(f"{expected}; the key is not valid base64") from None
    # The key blob starts with its own type name (RFC 4253 string): it must match the stated type, and
    # key material must follow it (an ed25519 key: one 32-byte string; RSA: exponent and modulus; ECDSA:
    # curve name and point).
    length = int.from_bytes(blob[:4], "big") if len(blob) >= 4 else -1
    if blob[4 : 4 + length].decode("ascii", "replace") != key_type:
        raise InvalidValueError(f"{expected}; the key's data does not belong to a {key_type} key")
    try:
        material = _ssh_strings(blob)[1:]
    except ValueError:
        material = []
    complete = {
        "ssh-ed25519": len(material) == 1 and len(material[0]) == 32,
        "ssh-rsa": len(material) == 2 and all(material),
    }.get(key_type, len(material) == 2 and all(material))
    if not complete:
        raise InvalidValueError(f"{expected}; the {key_type} key has no (or incomplete) key material after its type")
    return f"{key_type} {encoded}"


_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def dns_name(raw: Any) -> str:
    """A DNS name as Kubernetes and MagicDNS write it: lower-case labels of letters, digits and '-'."""
    value = text(raw)
    labels = value.split(".")
    if len(value) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise InvalidValueError(
            f"{value!r} is not a DNS name (lower-case labels of letters, digits and '-', each at most 63 "
            "characters, not starting or ending with '-')"
        )
    return value


def tailnet_name(raw: Any) -> str:
    """A tailnet's MagicDNS name: every tailnet's is ``<name>.ts.net`` (its URLs, certificates and the
    Ingresses' names hang off it, so another domain would point them elsewhere)."""
    value = dns_name(raw)
    if not value.endswith(".ts.net") or value.count(".") < 2:
        raise InvalidValueError(f"{value!r} is not a tailnet DNS name like tail8d86e.ts.net (every tailnet's "
                                "MagicDNS name ends in .ts.net: see the admin console's DNS page)")
    return value


def hostname(raw: Any) -> str:
    """A host name to SSH to: a DNS name (upper case tolerated, as SSH does) or an IPv4 address."""
    return dns_name(text(raw).lower())


def dns_label(raw: Any) -> str:
    """One DNS-1123 label: Kubernetes object names such as a StorageClass, Tailscale hostnames."""
    value = text(raw)
    if not _DNS_LABEL.fullmatch(value):
        raise InvalidValueError(
            f"{value!r} is not a Kubernetes name (RFC 1123 label: lower-case letters, digits and '-', "
            "at most 63 characters, starting and ending with a letter or digit)"
        )
    return value


_UNIX_USER = re.compile(r"[a-z_][a-z0-9_.-]*")


def unix_user(raw: Any) -> str:
    value = text(raw)
    if not _UNIX_USER.fullmatch(value):
        raise InvalidValueError(f"{value!r} is not a user name")
    return value


def _json_value(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise InvalidValueError("is not valid JSON/YAML structured config") from None
    return raw


def json_list(raw: Any) -> list[Any]:
    value = _json_value(raw)
    if not isinstance(value, list):
        raise InvalidValueError("expected a list")
    return value


_LOGIN = re.compile(r"[^@\s]+@[^@\s]+")


def logins(raw: Any) -> tuple[str, ...]:
    found = tuple(text(item) for item in json_list(raw))
    if not found:
        raise InvalidValueError("needs at least one login")
    for login in found:
        if not _LOGIN.fullmatch(login):
            raise InvalidValueError(f"{login!r} is not a Tailscale login (user@domain)")
    return found


# Tailscale: "Tags ... must start with a letter and can contain only letters, numbers and dashes" after "tag:".
_TAG = re.compile(r"tag:[A-Za-z][A-Za-z0-9-]*")


def tags(raw: Any) -> tuple[str, ...]:
    found = tuple(text(item) for item in json_list(raw))
    for tag in found:
        if not _TAG.fullmatch(tag):
            raise InvalidValueError(
                f"{tag!r} is not a Tailscale tag: write tag:<name>, the name starting with a letter and holding "
                "only letters, digits and '-'"
            )
    return found


# minikube: "Disk size ... a number followed by b, k, m or g"; below 2000MB it refuses to start.
_DISK = re.compile(r"([1-9][0-9]*)(m|mb|g|gb)")
MINIKUBE_MIN_DISK_MB = 2000


def disk_size(raw: Any) -> str:
    value = text(raw).lower()
    match = _DISK.fullmatch(value)
    if not match:
        raise InvalidValueError(f"{raw!r} is not a size like 200g")
    megabytes = int(match.group(1)) * (1024 if match.group(2).startswith("g") else 1)
    if megabytes < MINIKUBE_MIN_DISK_MB:
        raise InvalidValueError(
            f"{value} is below minikube's minimum disk size of {MINIKUBE_MIN_DISK_MB}MB (minikube refuses to start)"
        )
    return value


# minikube's own rule for profile names (pkg/minikube/config/profile.go, ProfileNameValid): DNS labels
# separated by dots, more than one character (a Docker volume name), and none of its command keywords.
_LABEL = r"([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_PROFILE = re.compile(rf"({_LABEL}\.)*{_LABEL}")
MINIKUBE_KEYWORDS = ("start", "stop", "status", "delete", "config", "open", "profile", "addons", "cache", "logs")


def minikube_profile(raw: Any) -> str:
    value = text(raw)
    if not _PROFILE.fullmatch(value) or len(value) < 2:
        raise InvalidValueError(
            f"{value!r} is not a minikube profile name (minikube's rule: more than one character, DNS labels of "
            "letters, digits and '-' separated by single dots)"
        )
    if value.lower() in MINIKUBE_KEYWORDS:
        raise InvalidValueError(f"{value!r} is one of minikube's command keywords, which it refuses as a profile name")
    return value


# minikube's minimums (pkg/minikube/cmd/start_flags.go / validations): 2 CPUs, 1800 MB of usable memory.
MINIKUBE_MIN_CPUS = 2
MINIKUBE_MIN_MEMORY_MB = 1800


_REGISTRY_HOST = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?")


def upstreams(raw: Any) -> tuple[RegistryMirror, ...]:
    """A map registry host -> upstream URL, as the mirror type the components take."""
    value = _json_value(raw)
    if not isinstance(value, Mapping) or not value:
        raise InvalidValueError("expected a map of registry host -> upstream https URL")
    result = []
    for host, url in value.items():
        if not isinstance(host, str) or not _REGISTRY_HOST.fullmatch(host):
            raise InvalidValueError(f"{host!r} is not a registry host name (lower case, no path)")
        if not isinstance(url, str) or _CONTROL.search(url) or " " in url:
            raise InvalidValueError(f"upstream of {host} must be one https:// URL on one line, got {url!r}")
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise InvalidValueError(f"upstream of {host} must be an https:// URL, got {url!r}")
        if parts.username is not None or parts.password is not None:
            raise InvalidValueError(
                f"upstream of {host} carries credentials in its URL; they would land in zot's config and the plan: "
                "remove them (Docker Hub credentials go in blumeops:zot.dockerHubUser/dockerHubToken)"
            )
        if parts.query or parts.fragment:
            raise InvalidValueError(f"upstream of {host} must have no query or fragment, got {url!r}")
        if host.split(":")[0].endswith(".ts.net"):
            raise InvalidValueError(
                f"{host} is a tailnet's name: the homelab's own registry (registry.<tailnet>) is zot itself, and an "
                "upstream for it would send the homelab's own images outside; remove it from the map")
        result.append(RegistryMirror(registry=host, url=url.rstrip("/")))
    if "docker.io" not in value:
        raise InvalidValueError(
            "has no docker.io: every image named without a registry (nginx) is a Docker Hub image, and the pack's "
            "registries.mirrored (policy/images.yaml) counts on zot mirroring it: add "
            '"docker.io": "https://registry-1.docker.io"')
    return tuple(sorted(result, key=lambda upstream: upstream.registry))


def blocked(raw: Any) -> Mapping[str, str]:
    value = _json_value(raw)
    if not isinstance(value, Mapping):
        raise InvalidValueError('expected a map of phase id -> reason, e.g. {"6": "NAS export not ready"}')
    return {phase_id(key): text(reason) for key, reason in value.items()}


def tailscale_service(raw: Any) -> str:
    """A Tailscale Service name as the homelab writes them: ``svc:grafana``."""
    value = text(raw)
    if not value.startswith("svc:") or not _DNS_LABEL.fullmatch(value.removeprefix("svc:")):
        raise InvalidValueError(f"{value!r} is not a Tailscale Service name like svc:grafana")
    return value


def version(raw: Any) -> str:
    value = text(raw)
    if value.lower() in ("latest", "stable") or not re.fullmatch(r"v?[0-9]+(\.[0-9]+)*([-+.][0-9A-Za-z.-]+)?", value):
        raise InvalidValueError(f"{value!r} is not a pinned version")
    return value


def chart_version(raw: Any) -> str:
    """A Helm chart's SemVer 2 version as its repository lists it: no leading 'v' (an image tag may add one)."""
    value = text(raw)
    if value[:1] in "vV" and re.fullmatch(r"[vV][0-9].*", value):
        raise InvalidValueError(f"{value!r} has a leading 'v': chart versions are written without it "
                                f"(write {value[1:]!r}; the program adds the 'v' where an image tag has one)")
    if not re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?", value):
        raise InvalidValueError(f"{value!r} is not a pinned chart version like 1.102.3 (SemVer, as Helm requires)")
    return value


_STORAGE_QUANTITY = re.compile(r"[1-9][0-9]*(Mi|Gi|Ti)")


def storage_quantity(raw: Any) -> str:
    value = text(raw)
    if not _STORAGE_QUANTITY.fullmatch(value):
        raise InvalidValueError(f"{value!r} is not a Kubernetes size like 10Gi")
    return value


def one_of(*choices: str) -> Parser:
    def parse(raw: Any) -> str:
        value = text(raw).lower()
        if value not in choices:
            raise InvalidValueError(f"{value!r} is not one of {', '.join(choices)}")
        return value

    return parse
