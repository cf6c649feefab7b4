"""The Python examples in the docs run as they are, in strict mode, and emit what they promise.

Each ```python block of the pages below runs in a fresh interpreter (an example
may declare app metrics, which register process-wide) with a strict recording
emitter installed: an undeclared metric or tag raises, and a block that emits
nothing fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, require_module

PAGES = ("docs/instrumenting.md", "docs/aiohttp.md")
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
PROLOGUE = """\
from netauto_statsd.testing import recording as _recording
_recording_block = _recording(strict=True)
_recorder = _recording_block.__enter__()
"""
EPILOGUE = """
_recording_block.__exit__(None, None, None)
print(sorted(_recorder.names()))
"""


def blocks() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for number, code in enumerate(BLOCK.findall((ROOT / page).read_text()), 1):
            found.append((f"{page}#{number}", code))
    return found


@pytest.mark.parametrize(("where", "code"), blocks(), ids=[where for where, _ in blocks()])
def test_docs_example_runs(where: str, code: str, tmp_path: Path) -> None:
    if "aiohttp" in code:
        require_module("aiohttp", "pip install -e '.[aiohttp]'")
    script = tmp_path / "example.py"
    script.write_text(PROLOGUE + code + EPILOGUE)
    env = {**os.environ, "NETAUTO_STATSD_STRICT": "1", "DD_DOGSTATSD_DISABLE": "true"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 0, f"{where} failed:\n{code}\n{done.stderr[-3000:]}"
    emitted = done.stdout.strip().splitlines()[-1]
    if "recording()" not in code and "instrument_app" not in code:  # those install or only wire up
        assert emitted != "[]", f"{where} emitted nothing"


def test_every_page_has_examples() -> None:
    assert {where.split("#")[0] for where, _ in blocks()} == set(PAGES)
