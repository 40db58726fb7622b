"""Every Python snippet in README.md and docs/*.md runs.

A fenced block's info string says how:

* ```` ```python ````: executed in-process as a script of its own (a block that needs an
  event loop calls ``anyio.run`` itself);
* ```` ```python pytest ````: written to a file and run by pytest in a subprocess (for
  examples that are themselves test modules, with fixtures);
* ```` ```python no-run ````: skipped (it needs something CI does not have, such as a real
  SignalWire space). Use sparingly.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
MODES = {"python": "exec", "python pytest": "pytest", "python no-run": "skip"}


@dataclass(frozen=True)
class Snippet:
    path: Path
    line: int
    mode: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def snippets() -> list[Snippet]:
    found = []
    for path in DOCUMENTS:
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            info = " ".join(match["info"].split())
            if not info.startswith("python"):
                continue
            if info not in MODES:
                raise AssertionError(f"{path.name}: unknown code block tag {info!r}")
            line = text.count("\n", 0, match.start()) + 1
            found.append(Snippet(path, line, MODES[info], match["body"]))
    return found


SNIPPETS = snippets()


def test_the_documents_have_runnable_snippets() -> None:
    assert (ROOT / "README.md").exists()
    runnable = [s for s in SNIPPETS if s.mode != "skip"]
    assert any(s.path.name == "README.md" for s in runnable)
    assert len(runnable) > len(SNIPPETS) - len(runnable)


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.name for s in SNIPPETS])
def test_snippet_runs(snippet: Snippet, tmp_path: Path) -> None:
    if snippet.mode == "skip":
        pytest.skip("marked no-run")
    if snippet.mode == "exec":
        code = compile(snippet.code, snippet.name, "exec")
        exec(code, {"__name__": "__snippet__"})
        return
    module = tmp_path / "test_snippet.py"
    module.write_text(snippet.code, encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", module],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
