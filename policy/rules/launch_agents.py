"""`absolute-launchagent-paths`: launchd runs no shell, expands no `~`/`$VAR`, and gives a job
PATH=/usr/bin:/bin:/usr/sbin:/sbin, so every path a LaunchAgent names must be absolute."""

from __future__ import annotations

import plistlib
import re
import shlex
from collections.abc import Iterator
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy
from pulumi_policy.proxy import UnknownValueError

from rules.props import get, get_str, is_mapping, str_items

LAUNCH_AGENT = "blumeops:host:LaunchAgent"
SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh"})
# Words a `sh -c` string may start a command with without naming a binary.
SHELL_BUILTINS = frozenset(
    {
        ":", ".", "[", "[[", "alias", "break", "cd", "continue", "echo", "eval", "exit", "export",
        "false", "getopts", "hash", "local", "printf", "pwd", "read", "readonly", "return", "set",
        "shift", "source", "test", "times", "trap", "true", "type", "ulimit", "umask", "unset", "wait",
    }
)
# Words after which the next word is the command that really runs.
COMMAND_PREFIXES = frozenset({"exec", "command", "builtin", "time", "nohup", "!"})
SHELL_KEYWORDS = frozenset(
    {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "{", "}", "for", "case", "esac", "in"}
)
SEPARATORS = frozenset({";", "&&", "||", "|", "&", "\n", "(", ")", ";;", "|&"})
REDIRECTS = frozenset({">", ">>", "<", "<<", ">&", "<&", "&>", ">|", "<>", "&>>"})
_ASSIGNMENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
HINT = "launchd has no shell, expands no `~` or `$VAR` and has PATH=/usr/bin:/bin:/usr/sbin:/sbin"


def path_problem(value: str) -> str | None:
    """Why `value`, which must be a path, is not an absolute one (None when it is)."""
    if not value:
        return "is empty"
    if value.startswith("~"):
        return "starts with `~`, which launchd does not expand"
    if "$" in value:
        return "uses a variable, which launchd does not expand"
    if not value.startswith("/"):
        if "/" not in value:
            return "is a bare command name, which launchd cannot find on its PATH"
        return "is a relative path"
    return None


def looks_like_path(value: str) -> bool:
    """An argument meant as a path: `~...`, `$VAR...`, `./x`, `a/b` (but not a URL or `svc:x/y`)."""
    if value.startswith(("~", "$", "./", "../", "/")):
        return True
    if any(space in value for space in " \t\n"):
        return False
    if "$" in value and "/" in value:
        return True
    return "/" in value and not _URL_RE.match(value) and not value.startswith("-")


def argument_problems(arguments: list[str], skip: int | None = None) -> Iterator[str]:
    for index, argument in enumerate(arguments[1:], start=1):
        if index == skip:
            continue
        candidates = [argument]
        if argument.startswith("-") and "=" in argument:
            candidates = [argument.split("=", 1)[1]]
        for candidate in candidates:
            if looks_like_path(candidate):
                problem = path_problem(candidate)
                if problem:
                    yield f"programArguments[{index}] {argument!r} {problem}"


# A bare file name an argument names: resolved against the job's working directory, `/` unless set.
_FILE_NAME = re.compile(r"^[\w.-]+\.(?:json|ya?ml|toml|conf|cfg|ini|sh|bash|py|rb|pl|js|log|plist|pem|key|crt|"
                        r"txt|db|sqlite3?|env)$", re.IGNORECASE)


def relative_file_problems(arguments: list[str], skip: int | None = None) -> Iterator[str]:
    for index, argument in enumerate(arguments[1:], start=1):
        if index == skip:
            continue
        candidate = argument.split("=", 1)[1] if argument.startswith("-") and "=" in argument else argument
        if _FILE_NAME.match(candidate):
            yield (f"programArguments[{index}] {argument!r} names the file {candidate!r} relative to the job's "
                   "working directory, which is `/` when workingDirectory is not set: write its absolute path")


# Shell options that take the next argument as their value (`bash -o pipefail -c ...`).
SHELL_OPTIONS_WITH_VALUE = frozenset({"-o", "+o", "-O", "+O", "--rcfile", "--init-file"})
# Programs that run the command named after them (`/usr/bin/env zot serve` runs `zot` by PATH lookup).
COMMAND_RUNNERS = frozenset({"env", "nice", "nohup", "caffeinate", "arch", "sudo", "exec", "command", "time"})
# Options of those runners that take the next argument as their value (`nice -n 5`, `sudo -u me`).
_ENV_OPTIONS_WITH_VALUE = frozenset({"-u", "-C", "-P", "-S", "--unset", "--chdir", "-n", "--adjustment", "-t", "-w",
                                     "-g", "-h", "-p", "-U", "-arch"})
_FD_REDIRECT_RE = re.compile(r"^[0-9]+$")


def shell_script_index(arguments: list[str]) -> int | None:
    """The index of the `-c` string when the program is a shell started with -c, else None."""
    program = arguments[0] if arguments else ""
    if program.rsplit("/", 1)[-1] not in SHELLS:
        return None
    index = 1
    while index < len(arguments):
        argument = arguments[index]
        if argument == "--":
            return None
        if argument in SHELL_OPTIONS_WITH_VALUE:
            index += 2
            continue
        if argument.startswith("-") and not argument.startswith("--") and "c" in argument[1:]:
            return index + 1
        if not argument.startswith(("-", "+")):
            return None
        index += 1
    return None


def runner_target(arguments: list[str]) -> int | None:
    """When the program only runs another command (`/usr/bin/env zot serve`), the index of that command."""
    if not arguments or arguments[0].rsplit("/", 1)[-1] not in COMMAND_RUNNERS:
        return None
    index = past_runner_options(arguments, 1)
    return index if index < len(arguments) else None


def past_runner_options(arguments: list[str], index: int, operands: int = 0) -> int:
    """The index after a runner's options (`-n 5`, `-i`), assignments (`A=1`) and `operands` plain
    operands (the `30` of `timeout 30`): where the program it runs is named."""
    while index < len(arguments):
        argument = arguments[index]
        if argument in _ENV_OPTIONS_WITH_VALUE:
            index += 2
        elif argument.startswith("-") or _ASSIGNMENT_RE.match(argument):
            index += 1
        elif operands:
            operands -= 1
            index += 1
        else:
            break
    return index


def command_words(script: str) -> list[str]:
    """The first word of every simple command in `script` (the word after exec/command/env... too)."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|()<>\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    lexer.commenters = "#"
    tokens = list(lexer)
    words: list[str] = []
    expect_command = True
    skip_next = False
    for position, token in enumerate(tokens):
        if skip_next:
            skip_next = False
            continue
        if token in SEPARATORS:
            expect_command = True
            continue
        if token in REDIRECTS:
            skip_next = True
            continue
        following = tokens[position + 1] if position + 1 < len(tokens) else ""
        if _FD_REDIRECT_RE.match(token) and following in REDIRECTS:
            continue  # `2>&1`, `2>file`: the number names a file descriptor, not a command
        if not expect_command:
            continue
        if token in SHELL_KEYWORDS or _ASSIGNMENT_RE.match(token):
            continue
        if token in COMMAND_PREFIXES or token.rsplit("/", 1)[-1] in COMMAND_RUNNERS:
            if token.rsplit("/", 1)[-1] not in COMMAND_PREFIXES:
                words.append(token)  # /usr/bin/env itself must be absolute too
            continue
        if token.startswith("-") and words and words[-1].rsplit("/", 1)[-1] in COMMAND_RUNNERS:
            continue  # an option of env/nice/...
        words.append(token)
        expect_command = False
    return words


def script_problems(script: str) -> Iterator[str]:
    try:
        words = command_words(script)
    except ValueError as exc:
        yield f"its `-c` script cannot be parsed ({exc})"
        return
    for word in words:
        if word in SHELL_BUILTINS:
            continue
        problem = path_problem(word)
        if problem:
            yield f"its `-c` script runs {word!r}, which {problem}: name the command by absolute path"


def launch_agent_problems(props: Any) -> Iterator[str]:
    arguments = str_items(get(props, "programArguments"))
    if not arguments:
        yield "programArguments is empty: the first argument must be the absolute path of the program"
    else:
        problem = path_problem(arguments[0])
        if problem:
            yield f"program (programArguments[0]) {arguments[0]!r} {problem}"
        script_index = shell_script_index(arguments)
        target = runner_target(arguments)
        if target is not None:
            problem = path_problem(arguments[target])
            if problem:
                yield (f"programArguments[{target}] {arguments[target]!r} is the command "
                       f"{arguments[0].rsplit('/', 1)[-1]} runs, and it {problem}")
        yield from argument_problems(arguments, skip=script_index)
        if not isinstance(get(props, "workingDirectory"), str):
            yield from relative_file_problems(arguments, skip=script_index)
        if script_index is not None:
            if script_index >= len(arguments):
                yield "the shell is started with -c but no script follows"
            else:
                yield from script_problems(arguments[script_index])
    for key in ("program", "plistPath", "workingDirectory", "standardOutPath", "standardErrorPath"):
        value = get(props, key)
        if value is None:
            continue
        if not isinstance(value, str):
            yield f"{key} must be a string path, got {type(value).__name__}"
            continue
        problem = path_problem(value)
        if problem:
            yield f"{key} {value!r} {problem}"
    environment = get(props, "environmentVariables")
    if is_mapping(environment):
        path_value = get_str(environment, "PATH")
        if path_value is not None:
            for index, entry in enumerate(path_value.split(":")):
                problem = path_problem(entry) if entry else "is empty (an empty PATH entry means the working directory)"
                if problem:
                    yield f"environmentVariables.PATH entry {index} {entry!r} {problem}"
        for name in environment:
            if name == "PATH":
                continue
            value = get_str(environment, name)
            if value and (value.startswith("~") or re.search(r"\$\{?[A-Za-z_]", value)):
                yield f"environmentVariables.{name} {value!r} uses `~` or a variable, which launchd does not expand"


def validate_launch_agent(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type.lower() != LAUNCH_AGENT.lower():
        return
    label = get_str(args.props, "label") or args.name
    for problem in launch_agent_problems(args.props):
        report_violation(
            f"LaunchAgent '{label}' ({args.name}): {problem}. {HINT}: write /Users/<user>/... or "
            "/opt/homebrew/bin/... in full.",
            None,
        )


absolute_launchagent_paths = ResourceValidationPolicy(
    name="absolute-launchagent-paths",
    description=(
        "LaunchAgents name their program, path arguments, working directory, log files, plist and PATH "
        "entries by absolute path (launchd expands no ~ or $VAR and has no Homebrew PATH)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate_launch_agent,
)



# -- launchagent-no-shell ---------------------------------------------------------------------------

# Interpreters (and the option that makes them run a string as their program); shells are _SHELL_NAME.
_INTERPRETER = re.compile(r"^(?P<name>python|perl|ruby|node|php|osascript|tclsh|lua)[0-9.]*$")
INTERPRETER_CODE_OPTIONS: dict[str, frozenset[str]] = {
    "python": frozenset({"-c"}),
    "perl": frozenset({"-e", "-E"}),
    "ruby": frozenset({"-e"}),
    "node": frozenset({"-e", "--eval", "-p", "--print"}),
    "php": frozenset({"-r"}),
    "osascript": frozenset({"-e"}),
    "tclsh": frozenset(),
    "lua": frozenset({"-e"}),
}


# Programs that run the program named after them, for the hand-off check (a superset of COMMAND_RUNNERS).
HANDOFF_RUNNERS = COMMAND_RUNNERS | frozenset(
    {"xargs", "timeout", "gtimeout", "stdbuf", "unbuffer", "doas", "setsid", "taskpolicy", "chronic", "flock"})
# Runners whose first operand is not the program: `timeout 30 sh`, `flock /tmp/lock sh`.
_RUNNER_OPERANDS = {"timeout": 1, "gtimeout": 1, "flock": 1}
_SHELL_NAME = re.compile(r"^(?P<name>sh|bash|zsh|dash|ksh|mksh|csh|tcsh|fish)[0-9.-]*$")


def _program_index(arguments: list[str]) -> int | None:
    """The index of the program that really runs, past runners (`env`, `nice`, `timeout 30` ...)."""
    index = 0
    while index < len(arguments):
        runner = arguments[index].rsplit("/", 1)[-1].lower()
        if runner not in HANDOFF_RUNNERS:
            return index
        index = past_runner_options(arguments, index + 1, _RUNNER_OPERANDS.get(runner, 0))
    return None


def _split_strings(arguments: list[str]) -> list[str]:
    """`env -S 'sh -c x'` (and `--split-string=`) splits its value into arguments: judge those."""
    expanded: list[str] = []
    position = 0
    while position < len(arguments):
        argument = arguments[position]
        is_env = bool(expanded) and expanded[0].rsplit("/", 1)[-1].lower() == "env"
        if is_env and argument in ("-S", "--split-string") and position + 1 < len(arguments):
            try:
                expanded.extend(shlex.split(arguments[position + 1]))
            except ValueError:
                expanded.append(arguments[position + 1])
            position += 2
            continue
        if is_env and argument.startswith(("--split-string=", "-S")) and len(argument) > 2:
            value = argument.split("=", 1)[1] if argument.startswith("--") else argument[2:]
            try:
                expanded.extend(shlex.split(value))
            except ValueError:
                expanded.append(value)
            position += 1
            continue
        expanded.append(argument)
        position += 1
    return expanded


def shell_handoff(arguments: list[str]) -> str | None:
    """Why the agent hands its program to a shell or interpreter as a string (None when it does not)."""
    arguments = _split_strings(arguments)
    index = _program_index(arguments)
    if index is None:
        return None
    program = arguments[index]
    name = program.rsplit("/", 1)[-1].lower()
    via = f" (through {arguments[0]})" if index else ""
    if _SHELL_NAME.match(name):
        skip = False
        for option in arguments[index + 1 :]:
            if skip:
                skip = False
                continue
            if option in SHELL_OPTIONS_WITH_VALUE - {"--init-file", "--rcfile"}:
                skip = True
                continue
            if option in ("--", "-") or not option.startswith(("-", "+")):
                break
            if option in ("--command", "--init-file", "--rcfile"):
                return f"runs {program}{via} with {option}: a string of shell code instead of a program"
            if not option.startswith("--") and ("c" in option[1:] or "s" in option[1:]):
                return (f"runs {program}{via} with {option}: the job is a string of shell code (`-c`) or code "
                        "read from stdin (`-s`) rather than a program")
        return None
    match = _INTERPRETER.match(name)
    if match:
        code_options = INTERPRETER_CODE_OPTIONS[match["name"]]
        for option in arguments[index + 1 :]:
            if not option.startswith("-"):
                break
            if option in code_options or any(option.startswith(o) and len(o) == 2 for o in code_options if o):
                return f"runs {program}{via} with {option}: code given as a string instead of a program file"
    return None


# Environment variables that make the job run code it was not given: bash and sh source $BASH_ENV / $ENV
# before the script, zsh reads $ZDOTDIR's startup files, dyld loads DYLD_* libraries into the program
# (DYLD_INSERT_LIBRARIES) or from other directories, and the interpreters read startup code from PERL5OPT,
# PYTHONSTARTUP-like hooks (PYTHONPATH, RUBYOPT, NODE_OPTIONS).
CODE_ENV = re.compile(r"^(BASH_ENV|ENV|ZDOTDIR|PROMPT_COMMAND|SHELLOPTS|BASHOPTS|DYLD_.*|LD_PRELOAD|LD_LIBRARY_PATH|"
                      r"PERL5OPT|PERL5LIB|PYTHONSTARTUP|PYTHONPATH|PYTHONHOME|RUBYOPT|RUBYLIB|NODE_OPTIONS)$",
                      re.IGNORECASE)


def code_environment(props: Any) -> Iterator[str]:
    environment = get(props, "environmentVariables")
    if not is_mapping(environment):
        return
    for name in environment:
        if isinstance(name, str) and CODE_ENV.match(name):
            yield (f"environmentVariables sets {name}, which makes the job load code it was not given (a shell "
                   "sources $BASH_ENV/$ENV, dyld loads DYLD_* libraries, interpreters read their *OPT/*PATH "
                   "hooks): drop it, and put what the job needs into the script it runs")


def no_shell_problems(props: Any) -> Iterator[str]:
    yield from code_environment(props)
    arguments = str_items(get(props, "programArguments"))
    program = get_str(props, "program")
    if program:
        arguments = [program, *arguments[1:]] if arguments else [program]
    why = shell_handoff(arguments)
    if why:
        yield (f"{why}. launchd starts a program with arguments; a shell string hides what runs (and every "
               "command in it must then be checked by hand): install a script file and run it by absolute "
               "path, e.g. ['/bin/bash', '/Users/<user>/bin/<script>']")


def validate_no_shell(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type.lower() != LAUNCH_AGENT.lower():
        return
    label = get_str(args.props, "label") or args.name
    for problem in no_shell_problems(args.props):
        report_violation(f"LaunchAgent '{label}' ({args.name}): {problem}.", None)


launchagent_no_shell = ResourceValidationPolicy(
    name="launchagent-no-shell",
    description=(
        "LaunchAgents run a program by absolute path, never a string of shell or interpreter code "
        "(`sh -c`, `bash -lc`, `env zsh -c`, `python3 -c`, `osascript -e` ...), and set no environment variable "
        "that loads code (BASH_ENV, ENV, DYLD_*, LD_PRELOAD, PERL5OPT, PYTHONPATH, NODE_OPTIONS ...)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate_no_shell,
)


# -- launchd-plists-from-launchagents ---------------------------------------------------------------

_LAUNCHD_DIRS = re.compile(r"launch(?:agents|daemons)", re.IGNORECASE)
_PLIST_DOCUMENT = re.compile(r"(?:<\?xml[^>]*>\s*)?(?:<!DOCTYPE\s+plist[^>]*>\s*)?<plist\b.*?</plist\s*>",
                             re.IGNORECASE | re.DOTALL)
_PLIST_KEYS = {
    "Program": "program",
    "ProgramArguments": "programArguments",
    "WorkingDirectory": "workingDirectory",
    "StandardOutPath": "standardOutPath",
    "StandardErrorPath": "standardErrorPath",
    "EnvironmentVariables": "environmentVariables",
    "Label": "label",
}


def _parent_type(urn: str, parent: str | None) -> str | None:
    """The type of the resource's parent, from its parent URN (or its own URN's type chain)."""
    for candidate, offset in ((parent, 1), (urn, 2)):
        if not candidate:
            continue
        parts = candidate.split("::")
        if len(parts) >= 4:
            chain = parts[2].split("$")
            if len(chain) >= offset:
                return chain[-offset]
    return None


def embedded_plists(text: str) -> Iterator[tuple[int, Any]]:
    """(position, parsed plist or the parse error) of every XML plist in `text`, undoing the quoting
    that `shlex.quote` puts around a single quote."""
    for match in _PLIST_DOCUMENT.finditer(text):
        document = match.group(0).replace("'\"'\"'", "'").replace("'\\''", "'")
        try:
            yield match.start(), plistlib.loads(document.encode())
        except Exception as exc:  # plistlib raises several kinds; each means unreadable
            yield match.start(), exc


def plist_writer_problems(props: Any, urn: str, parent: str | None) -> Iterator[str]:
    # every top-level text: create/update/delete/stdin of a Command, remotePath of CopyToRemote/CopyFile
    texts: dict[str, Any] = {}
    deferred: UnknownValueError | None = None
    for name in list(props):
        if name == "connection":
            continue
        try:
            texts[str(name)] = props[name]
        except UnknownValueError as exc:
            deferred = deferred or exc
    yield from _plist_writer_problems(texts, urn, parent)
    if deferred is not None:
        raise deferred


_SHELL_COMMENT = re.compile(r"^[ \t]*#.*$", re.MULTILINE)


# A legacy service's retirement moves that service's own plist out of ~/Library/LaunchAgents and back on
# rollback (or has `brew services` do it): it names the directory but writes no plist of its own. It may
# name the directory, never hold a plist document.
RETIREMENT = "blumeops:host:LegacyServiceRetirement"


def _plist_writer_problems(texts: dict[str, Any], urn: str, parent: str | None) -> Iterator[str]:
    # A shell comment line writes nothing: a step's script may explain why it keeps a file out of
    # ~/Library/LaunchAgents. Every other line counts, and a plist document counts wherever it stands.
    writes = [name for name, text in texts.items() if isinstance(text, str)
              and (_LAUNCHD_DIRS.search(_SHELL_COMMENT.sub("", text)) or _PLIST_DOCUMENT.search(text))]
    if not writes:
        return
    parent_type = _parent_type(urn, parent)
    documents = [name for name in writes if _PLIST_DOCUMENT.search(texts[name])]
    if parent_type is not None and parent_type.lower() == RETIREMENT.lower() and not documents:
        return
    if parent_type is None or parent_type.lower() != LAUNCH_AGENT.lower():
        yield (
            f"its {', '.join(f'`{name}`' for name in writes)} writes into ~/Library/LaunchAgents (or holds a "
            "plist), but it is not the install step of a blumeops:host:LaunchAgent: a plist written another way "
            "escapes the LaunchAgent checks (absolute paths, no shell); register a LaunchAgent component instead"
        )
    for name in writes:
        for position, plist in embedded_plists(texts[name]):
            if isinstance(plist, Exception):
                yield f"`{name}` holds a plist at offset {position} that cannot be read ({plist})"
                continue
            if not isinstance(plist, dict):
                yield f"`{name}` holds a plist at offset {position} that is not a dictionary"
                continue
            agent = {prop: plist[key] for key, prop in _PLIST_KEYS.items() if key in plist}
            for problem in (*launch_agent_problems(agent), *no_shell_problems(agent)):
                if problem.startswith("plistPath"):
                    continue
                yield f"the plist in `{name}` ({agent.get('label', '?')}): {problem}"


def validate_plist_writers(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not args.resource_type.lower().startswith("command:"):
        return
    parent = getattr(args.opts, "parent", None)
    for problem in plist_writer_problems(args.props, args.urn, parent):
        report_violation(f"{args.resource_type.rsplit(':', 1)[-1]} '{args.name}': {problem}.", None)


launchd_plists_from_launchagents = ResourceValidationPolicy(
    name="launchd-plists-from-launchagents",
    description=(
        "Only a blumeops:host:LaunchAgent's install step writes into ~/Library/LaunchAgents, and every plist a "
        "command carries passes the LaunchAgent checks."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate_plist_writers,
)

POLICIES = [absolute_launchagent_paths, launchagent_no_shell, launchd_plists_from_launchagents]
