"""The project documents its own model: every citation of docs/model.md names a section that
exists, no citation of a document the repository does not contain is left, and every
command example of the README is a valid command line."""

import re
import shlex
from pathlib import Path

import pytest

from stability.cli import build_parser
from stability.cli.common import CliError

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "docs" / "model.md"
SOURCES = [p for pattern in ("stability/**/*.py", "experiments/*.py", "paper_figures/*.py",
                             "proofs_check/*.py", "benchmarks/*.py", "tests/*.py", "*.md",
                             "docs/*.md", "proofs_check/*.md")
           for p in ROOT.glob(pattern)]


def sections() -> set:
    """Section numbers of docs/model.md: "1", "2", "2.1", ..."""
    out = set()
    for line in MODEL.read_text().splitlines():
        m = re.match(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", line)
        if m:
            out.add(m.group(1))
    return out


def test_model_document_has_the_sections_the_code_cites():
    assert {"1", "2", "2.1", "2.2", "2.3", "2.4", "2.5", "3", "3.1", "3.2", "3.3", "3.4", "4",
            "4.1", "4.2", "4.3", "4.4", "5"} <= sections()


def test_every_citation_names_an_existing_section():
    known = sections()
    cite = re.compile(r"docs/model\.md(?:\]\(model\.md\))?,? (?:sections? )?(\d+(?:\.\d+)?)"
                      r"(?:(?:-| and )(\d+(?:\.\d+)?))?")
    bad = []
    for path in SOURCES:
        if path == MODEL or path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for m in cite.finditer(line):
                for section in filter(None, m.groups()):
                    if section.rstrip(".") not in known:
                        bad.append(f"{path.relative_to(ROOT)}:{number}: {section}")
    assert bad == []


def test_no_citation_of_a_missing_design_document():
    pattern = re.compile(r"\bDESIGN\b")
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in SOURCES if p != Path(__file__).resolve()
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []


def readme_commands() -> list:
    """Every `stability ...` line of the README's code blocks (comments stripped)."""
    text = (ROOT / "README.md").read_text()
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("stability "):
                out.append(line)
            elif "&& stability " in line:
                out.append("stability " + line.split("&& stability ", 1)[1])
    return out


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_lines_parse(command):
    parser = build_parser()
    argv = shlex.split(command)[1:]
    try:
        args = parser.parse_args(argv)
    except CliError as err:
        pytest.fail(f"{command}: {err}")
    assert args.command in args.handlers
