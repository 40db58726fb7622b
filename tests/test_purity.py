"""relay_proto stays pure: standard library only, no I/O, no clock, no threads."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import relay_proto

FORBIDDEN = ("anyio", "trio", "asyncio", "socket", "wsproto", "time", "threading", "ssl")
PACKAGE = Path(relay_proto.__file__).parent

_PROBE = """
import json, sys
forbidden = {forbidden!r}
# Some of these are loaded at interpreter start-up (time is): unload them first, so that
# whatever relay_proto pulls in shows up.
for name in [m for m in sys.modules if m.split(".")[0] in forbidden]:
    del sys.modules[name]
import relay_proto, relay_proto._tracker, relay_proto._records, relay_proto._liveness
import relay_proto._state, relay_proto._session, relay_proto._commands, relay_proto._connection
import relay_proto._requests, relay_proto._validate, relay_proto._wire
relay_proto.ClientConnection(project="p", token="t").connect(now=0)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in forbidden)))
"""


def test_importing_relay_proto_loads_nothing_forbidden() -> None:
    probe = _PROBE.format(forbidden=FORBIDDEN)
    out = subprocess.run(
        [sys.executable, "-I", "-c", probe],
        check=True,
        capture_output=True,
        text=True,
        cwd=PACKAGE.parent,
        timeout=30,
    )
    assert json.loads(out.stdout) == []


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            names.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
        ):
            names.add("__import__")
    return names


def test_no_module_imports_anything_forbidden() -> None:
    files = sorted(PACKAGE.glob("*.py"))
    assert len(files) > 5
    for path in files:
        for name in _imported_modules(path):
            top = name.split(".")[0]
            assert top not in FORBIDDEN, f"{path.name} imports {name}"
            assert top == "__future__" or top in sys.stdlib_module_names, (
                f"{path.name} imports {name}, which is not in the standard library"
            )
            assert name != "__import__", f"{path.name} imports dynamically"


def test_the_scan_sees_every_kind_of_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import a.b, c\nfrom d.e import f\nfrom . import g\n__import__('h')\n")
    assert _imported_modules(sample) == {"a.b", "c", "d.e", "__import__"}
