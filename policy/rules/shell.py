"""The shell a host step runs, read as bash reads it: words, simple commands, and the scripts nested in them.

A host step's script arrives on stdin (the command string is a constant, `constant-command-strings`), with its
values in a preamble of `readonly NAME='value'` lines. What a rule must find in it is what the script makes a
program do (`launchctl bootstrap`, `kubectl apply`), however it is spelled:

- words are split and unquoted as bash does (`'...'`, `"..."`, `$'\\x6c...'`, backslashes, `laun''chctl` is
  `launchctl`); a comment is a `#` that starts a word, never one inside it (`${x#y}`);
- a program is recognised by the value a word has, wherever it stands in the command (`bounded 30
  "$LAUNCHCTL" bootstrap ...`): `$NAME` and `${NAME}` take every value the script (or the step's `environment`)
  assigns to NAME anywhere; a word the pack cannot resolve (`$(...)`, an unassigned variable) keeps its `$`;
- command substitutions (`$(...)`, backticks), heredoc bodies and every quoted string holding a blank (`bash -c
  "..."`, `eval "..."`, a message) are read again as scripts of their own (a bounded depth), so a command hidden
  in one is found too.

This is a reader for judging, not an interpreter: what a script computes at run time (`$(echo ... | base64 -d)`,
`eval "$x"` of a variable it assembles) cannot be read ahead; the rules that use it refuse what they cannot read
where that matters (an unreadable launchctl verb, say).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

MAX_DEPTH = 3
UNREADABLE = "$(…)"  # what a command substitution reads as in the word around it: not a literal
SEPARATORS = frozenset({";", "&", "&&", "||", "|", "|&", "\n", "(", ")", ";;", ";&", ";;&", "{", "}"})
REDIRECTS = frozenset({"<", ">", ">>", "<<<", ">&", "<&", "&>", "&>>", ">|", "<>", "<<", "<<-"})
_SEPARATOR_WORDS = frozenset("\0" + operator for operator in SEPARATORS)
_REDIRECT_WORDS = frozenset("\0" + operator for operator in REDIRECTS)
_OPERATOR = re.compile(r"&&|\|\||;;&|;;|;&|<<<|<<-|<<|&>>|&>|>>|>&|<&|>\||<>|\|&|[;&|()<>]")
_BLANKS = re.compile(r"[ \t\r]+")
_PLAIN = re.compile(r"[^\s;&|()<>'\"\\$`]+")
_DQ_PLAIN = re.compile(r"[^\"\\$`]+")
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\+?=(.*)$", re.DOTALL)
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-=?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_TOKEN = re.compile(
    r"(?:[ \t\r]|\\\n)*(?:(?P<newline>\n)|(?P<comment>#[^\n]*)"
    r"|(?P<op>&&|\|\||;;&|;;|;&|<<<|<<-|<<|&>>|&>|>>|>&|<&|>\||<>|\|&|[;&|()<>])"
    r"|(?P<word>(?:[^\s;&|()<>'\"\\$`]+|'[^']*'|\"(?:[^\"\\$`]|\\[^\n]|\$\{[^}]*\}|\$(?![('\"{]))*\""
    r"|\\[^\n]|\$\{[^}]*\}|\$(?![('\"{]))+))?")
_WORD_END = re.compile(r"[\s;&|()<>]|$")
_QUOTED_PART = re.compile(r"(\$\{[^}]*\})|'([^']*)'|\"((?:\$\{[^}]*\}|[^\"\\]|\\.)*)\"|\\(.)", re.DOTALL)
_DQ_ESCAPE = re.compile(r"(\$\{[^}]*\})|\\([\"\\$`])")


def _unquote(raw: str) -> str:
    """A word the fast path read (no substitution in it) with its quoting removed; `${...}` is kept as written."""
    def inside(match: re.Match[str]) -> str:
        return match.group(1) or match.group(2)

    def part(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return match.group(1)
        if match.group(2) is not None:
            return match.group(2)
        if match.group(3) is not None:
            return _DQ_ESCAPE.sub(inside, match.group(3))
        return match.group(4)

    return _QUOTED_PART.sub(part, raw)


_ANSI_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f",
                 "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}
_ANSI = re.compile(r"\\(x[0-9A-Fa-f]{1,2}|u[0-9A-Fa-f]{1,4}|U[0-9A-Fa-f]{1,8}|[0-7]{1,3}|c.|.)", re.DOTALL)
_MAX_CANDIDATES = 8


# A script's words are strings, unquoted as bash would (a command substitution reads as UNREADABLE); an operator
# (`;`, `|`, `<<`, a newline ...) is its text after a NUL, which no word of a script can hold (bash drops NUL bytes
# from its input, and so does `parse`). Plain strings, not objects: a host step has thousands of words.
OPERATOR = "\0"
NEWLINE = OPERATOR + "\n"


@dataclass(slots=True)
class Script:
    words: list[str] = field(default_factory=list)
    nested: list[Script] = field(default_factory=list)
    # read again from a quoted string (`bash -c "..."`, or a message `die "launchctl print failed"`): maybe code,
    # maybe prose, where a plain word is as likely English as an operand
    quoted: bool = False
    depth: int = 0  # below MAX_DEPTH, every multi-line string in it is read again as a nested script
    _commands: tuple[tuple[str, ...], ...] | None = field(default=None, repr=False, compare=False)

    def scripts(self) -> Iterator[Script]:
        """This script and every script nested in it."""
        stack = [self]
        while stack:
            script = stack.pop()
            yield script
            stack.extend(reversed(script.nested))

    def own_commands(self) -> tuple[tuple[str, ...], ...]:
        """The words of every simple command of this script itself (redirections dropped), read once. Tuples of
        strings: the collector stops tracking them, so a host step's thousands of commands are never promoted."""
        if self._commands is None:
            found: list[tuple[str, ...]] = []
            current: list[str] = []
            skip = False
            for word in self.words:
                if word[:1] == OPERATOR:
                    if word in _SEPARATOR_WORDS:
                        if current:
                            found.append(tuple(current))
                        current = []
                    elif word in _REDIRECT_WORDS:
                        skip = True
                    continue
                if skip:
                    skip = False
                    continue
                current.append(word)
            if current:
                found.append(tuple(current))
            self._commands = tuple(found)
        return self._commands

    def commands(self) -> Iterator[tuple[str, ...]]:
        """The words of every simple command of this script and the nested ones (redirections dropped)."""
        for script in self.scripts():
            yield from script.own_commands()

    def each_command(self) -> Iterator[tuple[Script, tuple[str, ...]]]:
        """(the script it stands in, its words) for every simple command of this script and the nested ones."""
        for script in self.scripts():
            for words in script.own_commands():
                yield script, words


class _Lexer:
    def __init__(self, text: str, depth: int) -> None:
        self.text = text
        self.depth = depth
        self.position = 0
        self.script = Script(depth=depth)
        self.heredocs: list[tuple[str, bool]] = []

    def nested(self, text: str, quoted: bool = False) -> None:
        if self.depth < MAX_DEPTH and text.strip():
            self.script.nested.append(_nested(text, self.depth + 1, quoted))

    def run(self, until_paren: bool = False) -> Script:
        text, words = self.text, self.script.words
        depth = 0
        expect_delimiter: bool | None = None
        length = len(text)
        while self.position < length:
            token = _TOKEN.match(text, self.position)
            assert token is not None  # every group is optional: it matches the blanks at least
            kind = token.lastgroup
            if kind is None:  # blanks, then what only the slow path reads (`$(`, a backtick, `$'`) or the end
                self.position = token.end()
                if self.position >= length:
                    break
                word = self._word()
            elif kind == "newline":
                words.append(NEWLINE)
                self.position = token.end()
                if self.heredocs:
                    self._heredoc_bodies()
                continue
            elif kind == "comment":
                self.position = token.end()
                continue
            elif kind == "op":
                value = token.group(kind)
                self.position = token.end()
                if until_paren and value == "(":
                    depth += 1
                elif until_paren and value == ")":
                    if depth == 0:
                        return self.script
                    depth -= 1
                words.append(OPERATOR + value)
                if value in ("<<", "<<-"):
                    expect_delimiter = value == "<<-"
                continue
            elif _WORD_END.match(text, token.end()):
                # the common word: plain, quoted, variables; nothing substituted, nothing decoded
                raw = token.group(kind)
                word = _unquote(raw) if ("'" in raw or '"' in raw or "\\" in raw) else raw
                self.position = token.end()
            else:
                self.position = token.start(kind)
                word = self._word()
            if expect_delimiter is not None:
                self.heredocs.append((word, expect_delimiter))
                expect_delimiter = None
            words.append(word)
            if (" " in word or "\t" in word or "\n" in word) and word != UNREADABLE:
                self.nested(word, quoted=True)
        return self.script

    def _heredoc_bodies(self) -> None:
        text = self.text
        for delimiter, strip_tabs in self.heredocs:
            start = self.position
            while self.position < len(text):
                end = text.find("\n", self.position)
                line = text[self.position:] if end < 0 else text[self.position:end]
                self.position = len(text) if end < 0 else end + 1
                if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                    self.nested(text[start:self.position - len(line) - 1])
                    break
            else:
                self.nested(text[start:])
        self.heredocs = []

    def _word(self) -> str:
        text = self.text
        parts: list[str] = []
        length = len(text)
        while self.position < length:
            char = text[self.position]
            if char in " \t\r\n;&|()<>":
                break
            if char == "'":
                end = text.find("'", self.position + 1)
                end = length if end < 0 else end
                parts.append(text[self.position + 1:end])
                self.position = end + 1
            elif char == '"':
                parts.append(self._double_quoted())
            elif char == "\\":
                parts.append(text[self.position + 1:self.position + 2])
                self.position += 2
            elif char == "`":
                parts.append(self._backticks())
            elif char == "$":
                parts.append(self._dollar())
            else:
                plain = _PLAIN.match(text, self.position)
                if plain is None:  # an operator character inside a word cannot happen: the loop ended first
                    parts.append(char)
                    self.position += 1
                else:
                    parts.append(plain.group(0))
                    self.position = plain.end()
        return "".join(parts)

    def _double_quoted(self) -> str:
        text = self.text
        self.position += 1
        parts: list[str] = []
        while self.position < len(text):
            char = text[self.position]
            if char == '"':
                self.position += 1
                break
            if char == "\\":
                following = text[self.position + 1:self.position + 2]
                if following == "\n":
                    pass
                elif following in ('"', "\\", "$", "`"):
                    parts.append(following)
                else:
                    parts.append("\\" + following)
                self.position += 2
            elif char == "`":
                parts.append(self._backticks())
            elif char == "$":
                parts.append(self._dollar(in_quotes=True))
            else:
                plain = _DQ_PLAIN.match(text, self.position)
                assert plain is not None
                parts.append(plain.group(0))
                self.position = plain.end()
        return "".join(parts)

    def _backticks(self) -> str:
        text = self.text
        end = self.position + 1
        while end < len(text) and text[end] != "`":
            end += 2 if text[end] == "\\" else 1
        self.nested(text[self.position + 1:end].replace("\\`", "`"))
        self.position = end + 1
        return UNREADABLE

    def _dollar(self, in_quotes: bool = False) -> str:
        text = self.text
        following = text[self.position + 1:self.position + 2]
        if following == "(":
            inner = _Lexer(text, self.depth + 1)
            inner.position = self.position + 2
            if self.depth < MAX_DEPTH:
                self.script.nested.append(inner.run(until_paren=True))
            else:
                inner.run(until_paren=True)
            self.position = inner.position
            return UNREADABLE
        if following == "{":
            end = text.find("}", self.position)
            end = len(text) - 1 if end < 0 else end
            value = text[self.position:end + 1]
            self.position = end + 1
            return value
        if following == "'" and not in_quotes:
            end = self.position + 2
            while end < len(text) and text[end] != "'":
                end += 2 if text[end] == "\\" else 1
            value = _ansi_c(text[self.position + 2:end])
            self.position = end + 1
            return value
        if following == '"' and not in_quotes:  # $"...": a translated string, quoted like "..."
            self.position += 1
            return self._double_quoted()
        self.position += 1
        return "$"


def _ansi_c(body: str) -> str:
    def decode(match: re.Match[str]) -> str:
        escape = match.group(1)
        if escape[0] in "xuU" and len(escape) > 1:
            return chr(int(escape[1:], 16))
        if escape[0] in "01234567":
            return chr(int(escape, 8) & 0xFF)
        if escape[0] == "c" and len(escape) == 2:
            return chr(ord(escape[1]) & 0x1F)
        return _ANSI_ESCAPES.get(escape, "\\" + escape)

    return _ANSI.sub(decode, body)


def parse(text: str, depth: int = 0) -> Script:
    """The words of `text` and the scripts nested in it."""
    return _Lexer(text.replace(OPERATOR, "") if OPERATOR in text else text, depth).run()


@functools.lru_cache(maxsize=4096)
def _nested(text: str, depth: int, quoted: bool) -> Script:
    """A nested script, read once per process: every host step carries the same library, messages and all (a
    Script is never changed once read)."""
    script = parse(text, depth)
    script.quoted = quoted
    return script


def assignments(scripts: Iterable[Script], environment: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Every value each variable is assigned anywhere (`readonly NAME='v'`, `NAME=v`, `local NAME=v`), and the
    step's environment."""
    values: dict[str, list[str]] = {}
    for name, value in (environment or {}).items():
        values.setdefault(name, []).append(value)
    for script in scripts:
        for whole in script.scripts():
            for word in whole.words:
                if "=" in word and word[:1] != OPERATOR:
                    match = _ASSIGNMENT.match(word)
                    if match:
                        known = values.setdefault(match[1], [])
                        if match[2] not in known:
                            known.append(match[2])
    return values


class Variables:
    """The values a script's variables can take: `$NAME`/`${NAME}` replaced by each value assigned to NAME anywhere,
    a value that names variables itself resolved in turn (a bounded depth; a variable assigned nowhere stays as
    written). Each variable is resolved once."""

    def __init__(self, assigned: Mapping[str, list[str]]) -> None:
        self.assigned = assigned
        self._full: dict[str, list[str]] = {}

    def values(self, name: str, depth: int = 0) -> list[str] | None:
        found = self._full.get(name)
        if found is not None:
            return found
        raw = self.assigned.get(name)
        if raw is None:
            return None
        self._full[name] = [f"${{{name}}}"]  # while it resolves: a variable that names itself stays as written
        values: list[str] = []
        for value in raw:
            values.extend(self._expand(value, depth + 1) if "$" in value and depth < 3 else [value])
        found = self._full[name] = list(dict.fromkeys(values))[:_MAX_CANDIDATES]
        return found

    def resolve(self, text: str) -> list[str]:
        """The values `text` can take."""
        if "$" not in text:
            return [text]
        return list(dict.fromkeys(self._expand(text, 0)))[:_MAX_CANDIDATES]

    def _expand(self, text: str, depth: int) -> list[str]:
        pieces: list[list[str]] = []
        last = 0
        for match in _VARIABLE.finditer(text):
            pieces.append([text[last:match.start()]])
            choices = list(self.values(match.group(1) or match.group(4), depth) or ())
            if match.group(2) in (":-", "-", ":=", "=") and match.group(3) is not None:
                choices.append(match.group(3))
            pieces.append(choices or [match.group(0)])
            last = match.end()
        if not pieces:
            return [text]
        pieces.append([text[last:]])
        results = [""]
        for choices in pieces:
            results = [prefix + choice for prefix in results for choice in choices][:_MAX_CANDIDATES]
        return results


def resolve(text: str, variables: Mapping[str, list[str]]) -> list[str]:
    """The values `text` can take with `variables` (see `Variables`)."""
    return Variables(variables).resolve(text)


def literal(value: str) -> bool:
    """A value the pack could read: nothing left to expand or substitute."""
    return "$" not in value and UNREADABLE not in value


def program_name(value: str) -> str:
    """What a word names as a program: its last path component, in lower case."""
    return value.rstrip("/").rsplit("/", 1)[-1].lower()


_VERSION_SUFFIX = re.compile(r"[-_.]?[0-9][0-9._-]*$")


@functools.lru_cache(maxsize=16384)
def program_family(program: str) -> str:
    """The name a program is known by, its version suffix stripped: `/opt/homebrew/bin/python3.12` -> `python`,
    `/bin/BASH` -> `bash`, `perl5.34` -> `perl`."""
    name = program_name(program).removesuffix(".exe")
    return _VERSION_SUFFIX.sub("", name) or name
