"""The host scripts run under macOS's /bin/bash, which is bash 3.2: no bash 4+ constructs allowed.

The tests run the scripts under this machine's newer bash, so this guard is what catches a construct
that would only fail on indri.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parents[2] / "components" / "host" / "scripts").glob("*.sh"))

BASH4_ONLY = {
    "mapfile/readarray (bash 4)": re.compile(r"\b(mapfile|readarray)\b"),
    "associative arrays (bash 4)": re.compile(r"\b(declare|local|typeset)\s+-[a-zA-Z]*A"),
    "namerefs (bash 4.3)": re.compile(r"\b(declare|local|typeset)\s+-[a-zA-Z]*n\b"),
    "case modification ${x,,} ${x^^} (bash 4)": re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(,,?|\^\^?)\}"),
    "[[ -v name ]] (bash 4.2)": re.compile(r"\[\[\s+-v\s"),
    "&>> and |& (bash 4)": re.compile(r"&>>|\|&"),
    "coproc (bash 4)": re.compile(r"\bcoproc\b"),
    "negative array index (bash 4.3)": re.compile(r"\[\s*-[0-9]+\s*\]\}"),
    "wait -n (bash 4.3)": re.compile(r"\bwait\s+-n\b"),
    "${x@Q} transformations (bash 4.4)": re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*@[QEPAaKk]\}"),
    "EPOCHSECONDS (bash 5)": re.compile(r"\bEPOCH(SECONDS|REALTIME)\b"),
    "globstar/lastpipe (bash 4)": re.compile(r"shopt\s+-s\s+(globstar|lastpipe)"),
    ";& and ;;& case fall-through (bash 4)": re.compile(r";;&|;&\s*$", re.MULTILINE),
}


def test_there_are_scripts() -> None:
    assert len(SCRIPTS) >= 8


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_no_bash4_constructs(script: Path) -> None:
    code = "\n".join(line.split(" #", 1)[0] for line in script.read_text().splitlines()
                     if not line.lstrip().startswith("#"))
    found = [what for what, pattern in BASH4_ONLY.items() if pattern.search(code)]
    assert not found, f"{script.name} uses {found}: macOS /bin/bash is 3.2"


def test_the_guard_catches_what_it_names() -> None:
    samples = ["mapfile -t lines", "local -A seen", "echo ${name,,}", "[[ -v HOME ]]", "cmd |& tee x",
               "echo ${arr[-1]}", "wait -n", "echo ${x@Q}", "echo $EPOCHSECONDS"]
    for sample in samples:
        assert any(p.search(sample) for p in BASH4_ONLY.values()), sample
    assert not any(p.search('echo "${arr[@]+"${arr[@]}"}" $((a * 2)) ${!name}') for p in BASH4_ONLY.values())
