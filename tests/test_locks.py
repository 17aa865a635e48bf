"""The lock files install what pyproject.toml asks for: every dependency is pinned, with hashes,
and the runtime and test locks agree on every version they share. Changing a dependency
without `bash scripts/lock` fails here, not on a fresh machine."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.M)


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / "requirements" / lock).read_text(encoding="utf-8")
    return {canonicalize_name(name): version for name, version in PIN.findall(text)}


def declared(*, extra: str | None = None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    listed = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return [Requirement(line) for line in listed]


def test_every_dependency_is_pinned_to_a_version_it_allows() -> None:
    runtime, test = pins("runtime.lock"), pins("test.lock")
    for lock, requirements in ((runtime, declared()), (test, declared() + declared(extra="test"))):
        for requirement in requirements:
            name = canonicalize_name(requirement.name)
            assert name in lock, f"{requirement} is not in the lock: run bash scripts/lock"
            assert requirement.specifier.contains(lock[name], prereleases=True), (
                f"{name}=={lock[name]} does not satisfy {requirement}: run bash scripts/lock"
            )


def test_both_locks_agree_and_every_pin_has_hashes() -> None:
    runtime, test = pins("runtime.lock"), pins("test.lock")
    assert {name: test[name] for name in runtime} == runtime
    for lock in ("runtime.lock", "test.lock"):
        entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements" / lock).read_text(encoding="utf-8"))
        assert all("--hash=sha256:" in entry for entry in entries if PIN.match(entry)), lock
