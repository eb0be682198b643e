"""Repository checks: README's commands are the ones CI runs, README's examples run, and the
package layering holds."""

import doctest
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def readme_commands():
    """The bash blocks of README.md's 'The two commands' section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, re.S)


def test_ci_runs_readme_commands():
    install_and_run, test = readme_commands()
    install = install_and_run.split(" && ")[0]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install in ci, f".ci/run does not run README's install command {install!r}"
    assert test in ci, f".ci/run does not run README's test command {test!r}"


def test_readme_examples_run():
    failed, attempted = doctest.testfile(str(ROOT / "README.md"), module_relative=False,
                                         optionflags=doctest.NORMALIZE_WHITESPACE)
    assert attempted > 10 and failed == 0


def test_layering_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which(
        "lint-imports")
    if exe is None:
        pytest.fail("lint-imports (import-linter) is not installed; see requirements-dev.txt")
    done = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
