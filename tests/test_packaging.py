"""Packaging: environment.yml lists pyproject's dependencies; the README's two commands; CI."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    env_reqs = [r for r in pip if not r.startswith("-")]
    assert sorted(map(_norm, env_reqs)) == sorted(map(_norm, deps))
    assert "-c constraints.txt" in pip  # the CPU torch pin applies to conda users too
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert any(d.startswith("python=3.1") for d in conda)


def test_constraints_pin_cpu_torch():
    lines = [ln.strip() for ln in (ROOT / "constraints.txt").read_text().splitlines() if ln and ln[0] != "#"]
    assert "torch==2.13.0" in lines


def test_readme_starts_with_the_two_commands():
    cmds = re.findall(r"^\s*(make [a-z-]+)", (ROOT / "README.md").read_text(), flags=re.M)
    assert cmds[:2] == ["make figures", "make test"]


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in ("figures:", "test:", "lab:"):
        assert re.search(rf"^{target}", makefile, flags=re.M), target
    assert "-c $(CONSTRAINTS)" in makefile  # every install goes through the torch pin
