"""The UI's compiled message catalogues live in a temporary folder that the process which made
it removes when it exits: every `vidx` command and server start used to leave one behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import os, sys
from search_ui.i18n import compiled_catalogues
dest = compiled_catalogues()
assert any(dest.rglob("messages.mo")), "nothing compiled"
pid = os.fork()
if pid == 0:  # a forked worker exits first: the folder must stay for the others
    sys.exit(0)
os.waitpid(pid, 0)
print(dest, any(dest.rglob("messages.mo")), flush=True)
"""


def test_the_compiled_catalogues_are_removed_when_their_process_exits() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    folder, kept_after_fork = out.stdout.split()
    assert kept_after_fork == "True"  # the forked child's exit did not remove it
    assert folder and not Path(folder).exists()  # the owner's exit did
