"""`absolute-launchagent-paths`: launchd runs no shell, expands no `~`/`$VAR`, and gives a job
PATH=/usr/bin:/bin:/usr/sbin:/sbin, so every path a LaunchAgent names must be absolute."""

from __future__ import annotations

import base64
import functools
import plistlib
import re
import shlex
from collections.abc import Iterator, Sequence
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from rules.host_steps import HostTexts, host_texts, is_host_step, tool_calls
from rules.kinds import parse_type
from rules.props import get, get_str, is_mapping, str_items
from rules.shell import MAX_DEPTH, literal, program_family, program_name

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


def split_strings(arguments: list[str]) -> list[str]:
    """`env -S 'zot serve'` (and `--split-string=`) splits its value into arguments: the arguments it runs with."""
    if not arguments or program_name(arguments[0]) != "env":
        return arguments
    expanded: list[str] = [arguments[0]]
    position = 1
    split = False
    while position < len(arguments):
        argument = arguments[position]
        value: str | None = None
        if argument in ("-S", "--split-string") and position + 1 < len(arguments):
            value = arguments[position + 1]
            position += 1
        elif argument.startswith("--split-string="):
            value = argument.split("=", 1)[1]
        elif argument.startswith("-S") and len(argument) > 2:
            value = argument[2:]
        if value is None:
            expanded.append(argument)
        else:
            split = True
            try:
                expanded.extend(shlex.split(value))
            except ValueError:
                expanded.append(value)
        position += 1
    return expanded if split else arguments


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
        split = split_strings(arguments)
        target = runner_target(split)
        if target is not None:
            problem = path_problem(split[target])
            if problem:
                where = f"programArguments[{target}]" if split is arguments else "the `env -S` string"
                yield (f"{where} {split[target]!r} is the command {arguments[0].rsplit('/', 1)[-1]} runs, and it "
                       f"{problem}")
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

# A LaunchAgent's ProgramArguments is an absolute program and its arguments, launchd starting the program itself.
# Programs whose work is to run other programs or code are matched by name (the last path component, in lower
# case, a version suffix stripped: python3.12, perl5.34, bash-5.2, node18):
# - shells and interpreters run code: only as `<interpreter> <absolute script file> [its arguments]` (a POSIX
#   shell may take options that neither take code nor read startup files first: `--noprofile`, `-e`, `-o pipefail`);
# - launchers run the program or command they are handed (env, nice, sudo, launchctl asuser, script, find -exec,
#   xargs, ssh host cmd, timeout ...): never, since what they run is spelled in their own option syntax;
# - text-code programs run their first operand as code (awk 'BEGIN{system(...)}', sed): never.
SHELL_FAMILY = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "oksh", "pdksh", "loksh", "yash", "posh", "csh",
                          "tcsh", "fish", "nu", "nushell", "elvish", "xonsh", "rc", "es", "ion", "busybox", "toybox",
                          "pwsh", "powershell"})
POSIX_SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "oksh", "pdksh", "loksh", "yash", "posh"})
INTERPRETERS = frozenset({
    "python", "pythonw", "pypy", "ipython", "perl", "ruby", "irb", "jruby", "php", "php-cgi", "lua", "luajit", "node",
    "nodejs", "deno", "bun", "tsx", "ts-node", "osascript", "tclsh", "wish", "expect", "swift", "rscript", "r",
    "julia", "java", "jshell", "groovy", "scala", "kotlin", "kotlinc", "elixir", "iex", "erl", "escript", "guile",
    "racket", "sbcl", "clisp", "ocaml", "runghc", "runhaskell", "ghci", "raku", "rakudo", "dotnet", "mono", "qjs",
    "gjs", "jjs", "jxa", "applescript"})
TEXT_CODE = frozenset({"awk", "gawk", "mawk", "nawk", "sed", "gsed", "m4", "dc"})
LAUNCHERS = frozenset({
    "env", "launchctl", "script", "find", "gfind", "xargs", "gxargs", "ssh", "su", "sudo", "doas", "run0", "pkexec",
    "runuser", "login", "nohup", "nice", "renice", "ionice", "chrt", "time", "caffeinate", "timeout", "gtimeout",
    "stdbuf", "unbuffer", "setsid", "taskpolicy", "taskset", "numactl", "cpulimit", "chronic", "flock", "lockf",
    "arch", "exec", "command", "builtin", "eval", "chroot", "sandbox-exec", "open", "watch", "parallel", "screen",
    "tmux", "dtach", "entr", "watchexec", "nix-shell", "nix", "mise", "asdf", "direnv", "npx", "npm", "yarn", "pnpm",
    "uvx", "uv", "pipx", "poetry", "pyenv", "rbenv", "nodenv", "conda", "mamba", "make", "gmake", "just", "docker",
    "podman", "nerdctl", "ssh-agent", "dbus-run-session", "xcrun", "at", "batch", "crontab", "automator",
    "shortcuts", "lldb", "gdb", "vim", "nvim", "vi", "emacs", "git", "brew", "sshpass", "rlwrap", "strace",
    "dtruss", "ltrace", "valgrind", "hyperfine", "retry", "daemonize", "systemd-run", "trickle", "proxychains",
    "proxychains4", "torsocks", "tsocks", "firejail", "bwrap", "unshare", "nsenter"})
# Options of a POSIX shell that take no code and read no startup file (before its script): `-l` (login) and `-i`
# (interactive) read startup files, `-c`/`-s` take code, `-o`/`-O` take a setting.
_SAFE_SHELL_OPTION = re.compile(r"^[-+][eufvxnaBCHP]+$")
SAFE_SHELL_LONG_OPTIONS = frozenset({"--noprofile", "--norc", "--posix", "--noediting"})
SAFE_SHELL_SETTINGS = frozenset({"errexit", "nounset", "pipefail", "xtrace", "verbose", "noclobber", "noglob",
                                 "posix", "allexport", "noexec", "errtrace", "functrace"})
_CODE_OPTION = re.compile(r"^-[A-Za-z]*[ceEsr][A-Za-z]*$|^--?(?:command|eval|exec|execute|init-file|rcfile|print|"
                          r"interactive|stdin|split-string|script)(?:=|$)|^-S", re.IGNORECASE)


def _kind(program: str) -> str | None:
    family = program_family(program)
    if family in SHELL_FAMILY:
        return "shell"
    if family in INTERPRETERS:
        return "interpreter"
    if family in TEXT_CODE:
        return "text-code"
    if family in LAUNCHERS:
        return "launcher"
    return None


def _script_index(arguments: list[str]) -> tuple[int | None, str | None]:
    """For a shell or interpreter: (the index of its script file, None) in the accepted form, or (None, why not)."""
    program = arguments[0]
    family = program_family(program)
    index = 1
    while index < len(arguments):
        option = arguments[index]
        if not option.startswith(("-", "+")) or option in ("-", "--"):
            break
        if family in POSIX_SHELLS and (_SAFE_SHELL_OPTION.match(option) or option in SAFE_SHELL_LONG_OPTIONS):
            index += 1
            continue
        if family in POSIX_SHELLS and option in ("-o", "+o") and index + 1 < len(arguments) \
                and arguments[index + 1] in SAFE_SHELL_SETTINGS:
            index += 2
            continue
        if _CODE_OPTION.match(option):
            what = ("a string of shell code (`-c`) or code read from stdin (`-s`), or startup files it reads"
                    if family in SHELL_FAMILY else "code given as a string")
            return None, f"runs {program} with {option}: {what} rather than a script file"
        return None, (f"runs {program} with {option} before its script file: only `<interpreter> <absolute script "
                      "path> [arguments]` is read as harmless")
    if index >= len(arguments) or arguments[index] in ("-", "--"):
        return None, f"runs {program} without a script file: it reads its code from stdin or a terminal"
    script = arguments[index]
    problem = path_problem(script)
    if problem or script.startswith(("/dev/", "/proc/")) or script.endswith("/"):
        return None, (f"runs {program} with {script!r}, which is not the absolute path of a script file "
                      f"({problem or 'a device or a directory'})")
    return index, None


def launcher_problems(arguments: list[str]) -> Iterator[str]:
    """Why the agent hands its job to a shell, interpreter or launcher as a string or command (nothing when it
    runs a program, or a script file by its absolute path)."""
    if not arguments:
        return
    program = arguments[0]
    kind = _kind(program)
    skip: int | None = None
    if kind == "launcher":
        yield (f"runs {program}, a launcher ({program_family(program)} runs the program or code it is handed, "
               "spelled in its own options): name the program itself as programArguments[0] (environment in "
               "environmentVariables)")
    elif kind == "text-code":
        yield f"runs {program}, whose first operand is code ({program_family(program)}): code given as a string"
    elif kind in ("shell", "interpreter"):
        skip, why = _script_index(arguments)
        if why:
            yield why
    if kind in ("launcher", "text-code") or (kind is not None and skip is None):
        return  # refused as a whole: its arguments are what it was handed
    # every argument of a program that is itself fine: one that names a shell, interpreter or launcher hands it a
    # command (`/opt/homebrew/bin/watchexec -- sh -c ...`, `--shell=/bin/zsh`)
    for index, argument in enumerate(arguments[1:], start=1):
        if index == skip:
            continue
        candidates = [argument]
        if argument.startswith("-") and "=" in argument:
            candidates.append(argument.split("=", 1)[1])
        if any(blank in argument for blank in " \t\n"):
            candidates.extend(argument.split()[:1])
        for candidate in candidates:
            handed = _kind(candidate)
            if handed in ("shell", "interpreter", "text-code") or (handed == "launcher" and "/" in candidate):
                yield (f"programArguments[{index}] {argument!r} hands {program_family(candidate)} a command or code "
                       f"through {program}")
                break


# The environment a LaunchAgent may set: where programs and the home directory are, the locale and the time zone,
# and the temporary directory. Any other variable can make the job run code it was not given (a shell sources
# $BASH_ENV/$ENV, zsh reads $ZDOTDIR, dyld loads DYLD_* libraries, interpreters read PYTHONSTARTUP, PERL5OPT,
# NODE_OPTIONS, RUBYOPT, git runs GIT_SSH_COMMAND ...), and what it needs belongs in its script or config file.
ALLOWED_ENVIRONMENT = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR"})
_LOCALE_VARIABLE = re.compile(r"^LC_[A-Z]+$")


def environment_allowed(name: str) -> bool:
    return name in ALLOWED_ENVIRONMENT or bool(_LOCALE_VARIABLE.match(name))


def code_environment(props: Any) -> Iterator[str]:
    environment = get(props, "environmentVariables")
    if not is_mapping(environment):
        return
    for name in environment:
        if not environment_allowed(str(name)):
            yield (f"environmentVariables sets {name}, which is not one a LaunchAgent may set (PATH, HOME, USER, "
                   "LOGNAME, LANG, LANGUAGE, LC_*, TZ, TMPDIR): a variable can make the job load code it was not "
                   "given (a shell sources $BASH_ENV/$ENV, dyld loads DYLD_* libraries, interpreters read their "
                   "*OPT/*PATH/STARTUP hooks); put what the job needs into its script or config file")


def no_shell_problems(props: Any) -> Iterator[str]:
    yield from code_environment(props)
    arguments = str_items(get(props, "programArguments"))
    program = get_str(props, "program")
    if program:
        arguments = [program, *arguments[1:]] if arguments else [program]
    for why in launcher_problems(arguments):
        yield (f"{why}. launchd starts a program with arguments; a shell string or launcher hides what runs (and "
               "every command in it must then be checked by hand): install a script file and run it by absolute "
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
        "LaunchAgents run a program by absolute path, a shell or interpreter only as `<interpreter> <absolute "
        "script> [args]` (never `sh -c`, `python3 -c`, `osascript -e` ...), no launcher (env, sudo, launchctl, "
        "script, find -exec, ssh ...), and set only PATH, HOME, USER, LOGNAME, LANG, LANGUAGE, LC_*, TZ, TMPDIR."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate_no_shell,
)


# -- launchd-plists-from-launchagents ---------------------------------------------------------------

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


def plist_writer_problems(props: Any, urn: str, parent: str | None, resource_type: str = "command:remote:Command"
                          ) -> Iterator[str]:
    """What in a host step writes or loads a launchd job other than as a LaunchAgent's install step does. Every
    text at any depth is read (`environment` values, triggers, an asset's text ...); an unknown one is raised
    after the rest is judged."""
    host = host_texts(resource_type, props)
    yield from _plist_writer_problems(host, urn, parent, resource_type)
    if host.unknown is not None:
        raise host.unknown


# A legacy service's retirement moves that service's own plist out of ~/Library/LaunchAgents and back on
# rollback (or has `brew services` do it): it names the directory and reloads that plist, but writes no plist of
# its own. It may name the directory, never hold a plist document.
RETIREMENT = "blumeops:host:LegacyServiceRetirement"
_LAUNCHD_NAMES = ("launchagents", "launchdaemons")
_WILDCARD = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\$\(…\)|\$|\[[^]]*\]|\{[^}]*\}|[*?]")
_WORD_PIECES = re.compile(r"[\s=:,;\"'`|&<>()]+")


@functools.lru_cache(maxsize=8192)
def _glob(component: str) -> re.Pattern[str] | None:
    """A path component as the names it could match (None: it has no wildcard): its globs (`*`, `?`, `[...]`,
    `{a,b}`) and the variables the pack cannot resolve are wildcards; in lower case (APFS ignores case)."""
    lowered = component.lower()
    if not any(char in lowered for char in "*?[{$"):
        return None
    pieces = _WILDCARD.split(lowered)
    pattern = re.escape(pieces[0])
    for wildcard, piece in zip(_WILDCARD.findall(lowered), pieces[1:], strict=True):
        pattern += ("." if wildcard == "?" or wildcard.startswith("[") else ".*") + re.escape(piece)
    return re.compile(pattern, re.DOTALL)


@functools.lru_cache(maxsize=8192)
def _launchd_component(component: str) -> tuple[bool, bool, bool]:
    """(could be `Library`, could be a launchd directory, spells one out: `LaunchAgents`, `Launch?gents`)."""
    pattern = _glob(component)
    if pattern is None:
        lowered = component.lower()
        return lowered == "library", lowered in _LAUNCHD_NAMES, lowered in _LAUNCHD_NAMES
    could = any(pattern.fullmatch(name) for name in _LAUNCHD_NAMES)
    letters = sum(len(piece) for piece in _WILDCARD.split(component))
    # `Library` written at least in part (`Lib*`; `$DIR` alone could be anything), the launchd directory spelled
    # out enough to be nothing else (`Launch?gents`, `*Agents`)
    return bool(letters) and bool(pattern.fullmatch("library")), could, could and letters >= 6


@functools.lru_cache(maxsize=16384)
def names_launchd_directory(word: str) -> bool:
    """Whether a word (quoting removed, variables resolved) could name ~/Library/LaunchAgents,
    /Library/LaunchDaemons ...: a component that could be the launchd directory after one that could be `Library`
    (`~/Lib*/Launch*`, `$HOME/Library/$DIR`, `~/Library/*`), or one that spells it out wherever it stands."""
    lowered = word.lower()
    if "launch" not in lowered and not any(char in word for char in "*?[{$"):
        return False
    for piece in _WORD_PIECES.split(word):
        components = piece.split("/")
        for index, component in enumerate(components):
            if not component:
                continue
            _library, could, spelled = _launchd_component(component)
            if spelled or (could and index > 0 and _launchd_component(components[index - 1])[0]):
                return True
    return False


def _base64_variants(marker: bytes) -> tuple[str, ...]:
    """The text `marker` always encodes to in base64, at each of the three alignments it can start at."""
    variants = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + marker).decode()
        skip = -(-offset * 4 // 3) + (1 if offset else 0)  # characters that also carry the bytes before it
        keep = (len(marker) + offset) * 4 // 3  # characters wholly determined by the marker
        variants.append(encoded[skip:keep])
    return tuple(variants)


# A binary plist (`bplist00`), or a plist document encoded (base64, hex): the pack cannot read what it says.
_ENCODED_PLISTS = (*_base64_variants(b"bplist0"), *_base64_variants(b"<plist"), *_base64_variants(b"DOCTYPE plist"))
_HEX_PLISTS = ("62706c69737430", "3c706c697374")


def encoded_plist(text: str) -> bool:
    if "bplist0" in text or any(variant in text for variant in _ENCODED_PLISTS):
        return True
    lowered = text.lower()
    return any(variant in lowered for variant in _HEX_PLISTS)


# What launchctl is asked to do (`launchctl <verb> ...`). Reading and stopping jobs are any step's business;
# loading, starting or enabling one only a LaunchAgent's install step's (its own plist and label), or a
# retirement's putting the retired service's own plist back; everything else (submit, asuser, bsexec, setenv,
# config, debug, ...) makes launchd run something no LaunchAgent declares, and is refused everywhere. A word that
# is no launchctl verb makes launchctl fail: that call does nothing.
LAUNCHCTL_READS = frozenset({"print", "print-cache", "print-disabled", "print-token", "plist", "procinfo", "hostinfo",
                             "resolveport", "blame", "list", "getenv", "managerpid", "manageruid", "managername",
                             "error", "variant", "version", "help", "dumpstate", "dumpjpcategory", "runstats"})
LAUNCHCTL_STOPS = frozenset({"bootout", "unload", "remove", "stop", "kill", "disable", "uncache"})
LAUNCHCTL_LOADS = frozenset({"bootstrap", "load", "kickstart", "enable", "start"})
LAUNCHCTL_VERBS = LAUNCHCTL_READS | LAUNCHCTL_STOPS | LAUNCHCTL_LOADS | frozenset(
    {"submit", "asuser", "bsexec", "setenv", "unsetenv", "config", "debug", "attach", "examine", "limit", "umask",
     "reboot", "bootshell", "userswitch", "log", "bstree"})
# Verbs that load or run a job: after a program word the pack cannot read (`"$1" submit`, `$(which x) bootstrap`),
# launchctl may be what runs.
_LOADING_WORDS = frozenset({"bootstrap", "bsexec", "asuser", "submit", "kickstart", "setenv"})
_LAUNCHCTL = frozenset({"launchctl"})
_DOMAIN = re.compile(r"^(gui|user|login|system|pid)/[0-9]+$")
_PLIST_EDITS = frozenset({"-insert", "-replace", "-remove", "-create", "-convert", "-append"})
_DEFAULTS_WRITES = frozenset({"write", "import", "delete", "rename"})


def _launchctl_calls(host: HostTexts) -> Iterator[tuple[str, str | None, Sequence[str], bool]]:
    """(where, verb, operands, in a quoted string) of every launchctl call in the step's texts; verb None: one the
    pack cannot read."""
    for where, within, words in host.commands():
        for index in range(1, len(words)):
            if words[index].lower() in _LOADING_WORDS and not any(
                    literal(value) for value in host.resolve(words[index - 1])):
                yield where, None, words[index - 1:], within.quoted
    for call in tool_calls(host, _LAUNCHCTL):
        rest = call.rest
        if call.handed:
            yield call.where, None, call.words, call.within.quoted
            continue
        if not rest:
            continue  # named, not run: `command -v launchctl`, `[[ -x "$LAUNCHCTL" ]]`
        verbs = host.resolve(rest[0])
        if not all(literal(verb) for verb in verbs):
            yield call.where, None, call.words[call.index:], call.within.quoted
            continue
        for verb in dict.fromkeys(verb.lower() for verb in verbs):
            if verb in LAUNCHCTL_VERBS:  # any other word makes launchctl fail
                yield (call.where, verb, [operand for operand in rest[1:] if not operand.startswith("-")],
                       call.within.quoted)


def _own(host: HostTexts, name: str) -> list[str]:
    return [value for value in host.variables.get(name, []) if literal(value)]


def launchctl_problems(host: HostTexts, parent_type: str | None) -> Iterator[str]:
    parent = (parent_type or "").lower()
    installs = parent == LAUNCH_AGENT.lower()
    retires = parent == RETIREMENT.lower()
    labels = _own(host, "LABEL")
    plists = [path for path in _own(host, "PLIST_PATH") if path.lower().endswith(".plist")
              and names_launchd_directory(path.rsplit("/", 1)[0])
              and (not installs or path.rsplit("/", 1)[-1][: -len(".plist")] in labels)]
    for where, verb, words, quoted in _launchctl_calls(host):
        if verb is None:
            yield (f"`{where}` runs `{' '.join(words)[:120]}`: what runs there, or the launchctl verb, is not a word "
                   "the pack can read (a substitution or a variable the script never assigns); name both in the "
                   "script")
            continue
        if verb in LAUNCHCTL_READS or verb in LAUNCHCTL_STOPS:
            continue
        if verb not in LAUNCHCTL_LOADS:
            yield (f"`{where}` runs `launchctl {verb}`, which makes launchd run a job no LaunchAgent declares: "
                   "declare a blumeops:host:LaunchAgent instead")
            continue
        if not (installs or retires):
            yield (f"`{where}` runs `launchctl {verb}`, but it is not the install step of a blumeops:host:LaunchAgent:"
                   " a job loaded another way escapes the LaunchAgent checks; declare a LaunchAgent instead")
            continue
        for position, operand in enumerate(words):
            if quoted and "/" not in operand and "$" not in operand:
                continue  # a plain word of a quoted string: as likely prose (`... failed: the gui domain`)
            values = host.resolve(operand)
            if verb in ("bootstrap", "load"):
                if all(value in plists for value in values):
                    continue
                if verb == "bootstrap" and position == 0 and (
                        all(_DOMAIN.match(value) for value in values) or not all(literal(v) for v in values)):
                    continue  # the domain it loads into
                yield (f"`{where}` runs `launchctl {verb}` of {operand!r}, which is not the plist the step declares "
                       "(PLIST_PATH: <launchd directory>/<LABEL>.plist): a LaunchAgent loads its own plist only")
            elif not all(value.rsplit("/", 1)[-1] in labels for value in values):
                yield (f"`{where}` runs `launchctl {verb}` of {operand!r}, which is not the job the step declares "
                       f"(LABEL: {', '.join(labels) or 'none'}): a LaunchAgent starts its own job only")


def plist_editor_problems(host: HostTexts) -> Iterator[str]:
    """A LaunchAgent's install step writes the plist it carries (which is judged); editing it afterwards
    (`plutil -replace`, `defaults write`, PlistBuddy) would make launchd read another one."""
    for where, _within, words in host.commands():
        for index, word in enumerate(words):
            names = host.families(word)
            if not names & {"plutil", "defaults", "plistbuddy"}:
                continue
            rest = [value.lower() for value in words[index + 1:]]
            output = rest[rest.index("-o") + 1:][:1] if "-o" in rest else []
            edits = "plistbuddy" in names or ("plutil" in names and (
                bool(_PLIST_EDITS & set(rest)) or ("-extract" in rest and output not in ([], ["-"])))) or (
                "defaults" in names and bool(rest) and rest[0] in _DEFAULTS_WRITES)
            if edits:
                yield (f"`{where}` edits a plist (`{' '.join(words[index:index + 3])}`): the install step of a "
                       "LaunchAgent writes the plist it carries, and nothing may change it afterwards")
                break


def _names_launchd(host: HostTexts) -> set[str]:
    """The texts (`where`) whose scripts name a launchd directory. A multi-line string is read as a script of its
    own (its comments dropped), not as a path."""
    found: set[str] = set()
    for where, within, words in host.commands():
        if where in found:
            continue
        for word in words:
            if "$" not in word and not names_launchd_directory(word):
                continue
            if any(names_launchd_directory(value) for value in host.resolve(word)
                   if "\n" not in value or within.depth >= MAX_DEPTH):
                found.add(where)
                break
    return found


def _plist_writer_problems(host: HostTexts, urn: str, parent: str | None, resource_type: str) -> Iterator[str]:
    parent_type = _parent_type(urn, parent)
    installs = parent_type is not None and parent_type.lower() == LAUNCH_AGENT.lower()
    retires = parent_type is not None and parent_type.lower() == RETIREMENT.lower()
    copies = parse_type(resource_type).kind in ("copytoremote", "copyfile")
    writes: list[str] = []
    documents: list[tuple[str, str]] = []
    launchd_texts = _names_launchd(host)
    for where, text in host.texts:
        carries = bool(_PLIST_DOCUMENT.search(text))
        if carries:
            documents.append((where, text))
        if encoded_plist(text):
            yield (f"`{where}` carries a binary or encoded plist (bplist00, base64, hex), which no check can read: "
                   "a LaunchAgent's plist is XML the pack judges")
        # a file copied into place named *.plist is a plist, wherever it goes
        names = carries or (copies and text.strip().lower().endswith(".plist"))
        if (names or where in launchd_texts) and where not in writes:
            writes.append(where)
    if writes and not installs and not (retires and not documents):
        yield (
            f"its {', '.join(f'`{name}`' for name in writes)} writes into ~/Library/LaunchAgents (or holds a "
            "plist), but it is not the install step of a blumeops:host:LaunchAgent: a plist written another way "
            "escapes the LaunchAgent checks (absolute paths, no shell); register a LaunchAgent component instead"
        )
    yield from launchctl_problems(host, parent_type)
    if installs:
        yield from plist_editor_problems(host)
    for where, text in documents:
        for position, plist in embedded_plists(text):
            if isinstance(plist, Exception):
                yield f"`{where}` holds a plist at offset {position} that cannot be read ({plist})"
                continue
            if not isinstance(plist, dict):
                yield f"`{where}` holds a plist at offset {position} that is not a dictionary"
                continue
            agent = {prop: plist[key] for key, prop in _PLIST_KEYS.items() if key in plist}
            for problem in (*launch_agent_problems(agent), *no_shell_problems(agent)):
                if problem.startswith("plistPath"):
                    continue
                yield f"the plist in `{where}` ({agent.get('label', '?')}): {problem}"


def validate_plist_writers(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not is_host_step(args.resource_type):
        return
    parent = getattr(args.opts, "parent", None)
    for problem in plist_writer_problems(args.props, args.urn, parent, args.resource_type):
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
