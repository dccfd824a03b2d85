"""What a host step (`command:*`: Command, CopyToRemote, CopyFile) carries: every text at any depth, read as shell.

A step's script is its `stdin`, but a text anywhere in its inputs can reach the host: an `environment` value is a
variable the script reads, a trigger or an asset's text is written somewhere. So every string of the resource
(its `connection` excepted: the SSH target, judged by `ssh-pinned-host-key`) is collected with where it sits, and
each is parsed once (`rules.shell`) for every rule that reads it within one `Analyze`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy.proxy import UnknownValueError

from rules.kinds import parse_type
from rules.props import Path, format_path, is_list, is_mapping
from rules.shell import Script, Variables, assignments, parse, program_family
from rules.wire import shared_walk

SKIPPED_KEYS = frozenset({"connection"})


@dataclass(frozen=True, slots=True)
class HostTexts:
    texts: tuple[tuple[str, str], ...]  # (where, text): `stdin`, `environment.PLIST`, `triggers[0].x` ...
    scripts: tuple[Script, ...]  # each text parsed, in the same order
    variables: dict[str, list[str]]  # every value each variable is assigned in any of them (and `environment`)
    unknown: UnknownValueError | None  # the first text that is not known yet (raised by a rule after the rest)
    resolver: Variables = field(default_factory=lambda: Variables({}), repr=False, compare=False)
    _resolved: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)
    _families: dict[str, frozenset[str]] = field(default_factory=dict, repr=False, compare=False)
    # every word of the step's commands that names a program, by program, read once for every rule that asks
    _named: dict[str, list[tuple[int, str, Script, tuple[str, ...], int]]] = field(
        default_factory=dict, repr=False, compare=False)
    _indexed: list[bool] = field(default_factory=lambda: [False], repr=False, compare=False)

    def resolve(self, word: str) -> tuple[str, ...]:
        """`shell.resolve(word)` with this step's variables, once per distinct word."""
        found = self._resolved.get(word)
        if found is None:
            found = self._resolved[word] = (word,) if "$" not in word else tuple(self.resolver.resolve(word))
        return found

    def families(self, word: str) -> frozenset[str]:
        """The programs (`program_family`) a word can name, once per distinct word."""
        found = self._families.get(word)
        if found is None:
            values = self.resolve(word)
            found = _one(program_family(values[0])) if len(values) == 1 else frozenset(
                program_family(value) for value in values)
            self._families[word] = found
        return found

    def commands(self) -> Iterator[tuple[str, Script, tuple[str, ...]]]:
        """(where, the script it stands in, its words) for every simple command of every text."""
        for (where, _text), script in zip(self.texts, self.scripts, strict=True):
            for within, words in script.each_command():
                yield where, within, words

    def named(self, families: frozenset[str]) -> list[tuple[int, str, Script, tuple[str, ...], int]]:
        """(order, where, within, words, index) for every word of every command that can name one of `families`
        (an assignment `X=/bin/launchctl` is a value, not a call), in the order they stand."""
        if not self._indexed[0]:
            order = 0
            for where, within, words in self.commands():
                for index, word in enumerate(words):
                    if _ASSIGNMENT_WORD.match(word):
                        continue
                    for family in self.families(word):
                        self._named.setdefault(family, []).append((order, where, within, words, index))
                    order += 1
            self._indexed[0] = True
        found = [entry for family in families for entry in self._named.get(family, ())]
        if len(families) > 1:
            found = sorted({entry[0]: entry for entry in found}.values(), key=lambda entry: entry[0])
        return found


# Programs that supply the arguments of the program they run at run time (`echo submit | xargs launchctl`,
# `find ... -exec kubectl {} +`): a tool named after one of them is handed arguments the pack cannot read.
SUBSTITUTING = frozenset({"xargs", "gxargs", "find", "gfind", "parallel", "fd", "watchexec", "entr", "eval"})
# Programs that copy or link a file: a tool copied under another name (`cp /bin/launchctl /tmp/lc`) runs unseen.
COPYING = frozenset({"cp", "gcp", "ln", "gln", "install", "ginstall", "ditto", "rsync", "mv", "gmv", "cat", "tee",
                     "dd", "base64", "xxd", "gzip", "zip", "tar"})
_ASSIGNMENT_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\+?=")


@dataclass(frozen=True, slots=True)
class ToolCall:
    where: str  # the text it stands in
    within: Script  # the (nested) script it stands in
    words: tuple[str, ...]  # the whole simple command
    index: int  # where the tool is named in it
    handed: bool  # handed to a program that supplies its arguments at run time, or copied under another name

    @property
    def rest(self) -> tuple[str, ...]:
        return self.words[self.index + 1:]


def tool_calls(host: HostTexts, families: frozenset[str]) -> Iterator[ToolCall]:
    """Every word of the step's commands that names one of `families` (an assignment `X=/bin/launchctl` is a value,
    not a call)."""
    for _order, where, within, words, index in host.named(families):
        handed = any(host.families(earlier) & SUBSTITUTING for earlier in words[:index]) or (
            index > 0 and bool(host.families(words[0]) & COPYING))
        yield ToolCall(where, within, words, index, handed)


@functools.lru_cache(maxsize=16384)
def _one(family: str) -> frozenset[str]:
    return frozenset((family,))


def is_host_step(resource_type: str) -> bool:
    return parse_type(resource_type).package == "command"


def host_texts(resource_type: str, props: Any) -> HostTexts:
    """Every string of the step's inputs at any depth (its `connection` excepted), parsed; once per resource."""
    return shared_walk(("host-texts", resource_type, id(props)), lambda: _collect(props))


def _collect(props: Any) -> HostTexts:
    texts: list[tuple[str, str]] = []
    unknown: UnknownValueError | None = None
    environment: dict[str, str] = {}
    stack: list[tuple[Any, Path]] = [(props, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            texts.append((format_path(path), value))
            if len(path) == 2 and str(path[0]).lower() == "environment":
                environment[str(path[1])] = value
            continue
        children: list[tuple[Any, Path]] = []
        if is_mapping(value):
            keys: list[str | int] = [str(key) for key in value if path or key not in SKIPPED_KEYS]
        elif is_list(value):
            keys = list(range(len(value)))
        else:  # an asset or archive (`source` of a CopyToRemote): its text, or the path or URI it is read from
            for attribute in ("text", "path", "uri"):
                held = getattr(value, attribute, None)
                if isinstance(held, str):
                    texts.append((f"{format_path(path)}.{attribute}", held))
            continue
        for key in keys:
            try:
                child = value[key]
            except UnknownValueError as exc:
                unknown = unknown or exc
                continue
            children.append((child, (*path, key)))
        stack.extend(reversed(children))
    scripts = tuple(parse(text) for _where, text in texts)
    variables = assignments(scripts, environment)
    return HostTexts(tuple(texts), scripts, variables, unknown, Variables(variables))
