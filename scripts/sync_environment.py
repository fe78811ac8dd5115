"""Write environment.yml from pyproject.toml so the two never drift (tests/test_environment.py checks).

Run after changing a pin in pyproject.toml:  .venv/bin/python scripts/sync_environment.py
"""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALL_GROUPS = ("judge", "reference")  # installed with dependencies by `make setup`
NO_DEPS_GROUP = "benchmark-data"  # installed with --no-deps, read as data


def render() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [
        "# Conda environment for the course. Generated from pyproject.toml by scripts/sync_environment.py;",
        "# tests/test_environment.py fails when the two drift. `make setup` (a plain venv) does the same.",
        "name: instruction-finetuning-course",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        "  - python=3.11",
        "  - pip",
        "  - pip:",
    ]
    lines += [f"      - {dep}" for dep in project["dependencies"]]
    for group in INSTALL_GROUPS:
        lines.append(f"      # [{group}]")
        lines += [f"      - {dep}" for dep in project["optional-dependencies"][group]]
    lines.append(f"      # [{NO_DEPS_GROUP}] then: pip install --no-deps "
                 + " ".join(project["optional-dependencies"][NO_DEPS_GROUP]))
    lines.append("      - -e .")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    (ROOT / "environment.yml").write_text(render())
    print("wrote environment.yml")
