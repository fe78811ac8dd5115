"""FAST mode is read in one place; the device is chosen automatically but can be overridden."""

import os
import re
import subprocess
import sys

import torch

from helpers import config
from helpers.config import REPO_ROOT


def fast_flag_in_subprocess(value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "COURSE_FAST"}
    if value is not None:
        env["COURSE_FAST"] = value
    code = "from helpers.config import FAST, RUN_DIR; print(FAST, RUN_DIR.name)"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True).stdout.split()


def test_fast_mode_switch_and_run_folder():
    assert fast_flag_in_subprocess("1") == ["True", "fast"]
    assert fast_flag_in_subprocess("0") == ["False", "default"]
    assert fast_flag_in_subprocess(None) == ["False", "default"]


def test_course_fast_is_read_only_in_helpers_config():
    # a read: environ.get("COURSE_FAST"), getenv("COURSE_FAST") or environ["COURSE_FAST"] not being assigned
    reads = re.compile(r"""(environ\.get\(\s*\\?["']COURSE_FAST|getenv\(\s*\\?["']COURSE_FAST"""
                       r"""|environ\[\s*\\?["']COURSE_FAST\\?["']\s*\](?!\s*=[^=]))""")
    files = [*(REPO_ROOT / "helpers").rglob("*.py"), *(REPO_ROOT / "notebooks").glob("*.ipynb")]
    readers = [path.name for path in files if path.name != "config.py" and reads.search(path.read_text())]
    assert reads.search((REPO_ROOT / "helpers" / "config.py").read_text()), (
        "the pattern must find config.py's read")
    assert not readers, f"COURSE_FAST must be read only in helpers/config.py, also read in: {readers}"


def test_pick_device_override_and_default():
    assert config.pick_device("cpu") == torch.device("cpu")
    expected = ("cuda" if torch.cuda.is_available()
                else ("mps" if torch.backends.mps.is_available() else "cpu"))
    assert config.pick_device().type == (os.environ.get("COURSE_DEVICE") or expected)


def test_set_seed_repeats_random_draws():
    config.set_seed(7)
    a = torch.rand(3)
    config.set_seed(7)
    assert torch.equal(a, torch.rand(3))
