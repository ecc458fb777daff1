"""The wheel an adopter installs: its dependencies, its PyPI page and its files."""

from __future__ import annotations

import email
import email.message
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
# A Markdown link or image, and its target.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    """The wheel built from a copy of the sources (a build writes into its source tree)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "PYPI.md", "README.md", "LICENSE"):
        shutil.copy(REPOSITORY / name, source / name)
    shutil.copytree(
        REPOSITORY / "src",
        source / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    out = tmp_path_factory.mktemp("dist")
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip_wheel, "--wheel-dir", str(out), str(source)], check=True)
    (built,) = out.glob("django_pgsse-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


@pytest.fixture(scope="module")
def metadata(wheel: zipfile.ZipFile) -> email.message.Message:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return email.message_from_bytes(wheel.read(name))


def test_requirements_leave_the_psycopg_build_to_the_application(
    metadata: email.message.Message,
) -> None:
    requires = [r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r]
    names = {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in requires}
    assert names == {"django", "psycopg", "psycopg-pool", "asgiref"}, requires
    assert not [r for r in requires if "[" in r], requires


def test_no_extras_that_only_make_sense_in_the_repository(
    metadata: email.message.Message,
) -> None:
    # One extra, for adopters: /metrics needs prometheus-client (docs/deployment.md).
    assert metadata.get_all("Provides-Extra") == ["metrics"]
    extras = [r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" in r]
    assert [re.split(r"[\s<>=!~;]", r, maxsplit=1)[0] for r in extras] == ["prometheus-client"]


SITE = "https://django-pgsse.readthedocs.io/"


def test_the_pypi_page_is_its_own_with_absolute_links(metadata: email.message.Message) -> None:
    assert metadata["Description-Content-Type"] == "text/markdown"
    description = metadata.get_payload()
    assert isinstance(description, str)
    assert description.startswith("# django-pgsse")
    assert "make run" not in description, "README.md is the repository's page, not PyPI's"
    links = LINK.findall(description)
    assert links, "the page links to the documentation"
    relative = [link for link in links if not link.startswith("https://")]
    assert relative == []
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL") or [])
    assert set(urls) == {"Homepage", "Documentation", "Changelog", "Issues"}
    # The documentation site (docs/, built by `make docs`) and the repository.
    assert urls["Documentation"] == SITE
    for link in [*links, *urls.values()]:
        assert link.startswith(("https://github.com/django-pgsse/django-pgsse", SITE)), link
        # Every documentation page linked from PyPI exists in the repository.
        if "/blob/main/" in link:
            assert (REPOSITORY / link.split("/blob/main/", 1)[1]).is_file(), link


def test_the_wheel_carries_the_type_marker_and_the_migrations(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    migrations = {path.name for path in (REPOSITORY / "src/pgsse/migrations").glob("0*.py")}
    assert migrations
    assert "pgsse/py.typed" in names
    assert {f"pgsse/migrations/{name}" for name in migrations} <= names
    assert "pgsse/migrations/__init__.py" in names
    assert "pgsse/management/commands/pgsse_prune.py" in names
    assert "pgsse/templatetags/pgsse.py" in names
    assert not [n for n in names if n.startswith(("tests/", "demo/", "bench/", "chat/"))]
