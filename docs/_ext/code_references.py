"""Sphinx extension: the code the pages name must exist, so that the docs cannot drift.

Every inline literal of every page is read, and a warning (an error in ``make test``) names
the page and line of each reference to nothing:

- a file of the repository (```tests/e2e/test_nginx.py```, ```demo/chatsite/settings.py```),
  and a test in one (```tests/test_security.py::test_writes_need_a_logged_in_user```);
- a Python name of the package (```pgsse.publish()```, ```pgsse.testing.capture_events```),
  imported as a user would; pgsse.js's own functions (```pgsse.connect(url, options)```) and
  pgsse's logger names count too;
- a system check (```pgsse.W006```): an ``id=`` in ``src/pgsse/checks.py``;
- a permission (```pgsse.change_event```): one Django gives a model of pgsse's;
- a setting (```PGSSE["MAX_STREAMS"]```): a field of ``pgsse.conf.PgsseSettings``;
- a management command (```manage.py pgsse_stats```): pgsse's, the chat's or Django's.

The settings tables of ``configuration.md`` (``| key | type | default |``) must list every
setting, and a default written as a Python literal must be the one in the code.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

REPOSITORY = Path(__file__).resolve().parents[2]
PACKAGE = REPOSITORY / "src" / "pgsse"

#: A path in the repository, maybe with ``::test_name`` (pytest's node id).
_PATH = re.compile(r"^((?:src|tests|demo|bench|loadtests|docs)/[\w./-]*\w)(?:::(\w+))?$")
#: A dotted name of the package, maybe called: the name is what precedes the first "(".
_NAME = re.compile(r"^(pgsse(?:\.[A-Za-z_]\w*)+)(?:\(.*)?$")
_CHECK_ID = re.compile(r"^pgsse\.[EW]\d{3}$")
#: A permission of pgsse's models, as ``user.has_perm()`` names it.
_PERMISSION = re.compile(r"^pgsse\.(?:add|change|delete|view)_\w+$")
_SETTING = re.compile(r"""PGSSE\[["'](\w+)["']\]""")
_COMMAND = re.compile(r"^(?:python )?manage\.py (\w+)")
#: Folders that builds make: named by the pages, never in the repository.
_BUILT = ("docs/_build", "bench/results")
#: Names that are files, not Python: ``pgsse.js``.
_FILE_SUFFIXES = (".js", ".py", ".md", ".css", ".html", ".txt")


def _django_ready() -> None:
    """Configure a minimal project once, so that pgsse's modules import as in one."""
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            INSTALLED_APPS=[
                "django.contrib.contenttypes",
                "django.contrib.auth",
                "django.contrib.staticfiles",
                "pgsse",
            ],
            DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "docs"}},
            STATIC_URL="static/",
        )
        import django

        django.setup()


def _resolves(dotted: str) -> bool:
    """Whether ``dotted`` names a module, or an attribute reached from one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


def _logger_names() -> set[str]:
    names = set()
    for source in PACKAGE.rglob("*.py"):
        names.update(re.findall(r"""getLogger\(["']([\w.]+)["']\)""", source.read_text()))
    return names


def _script_functions() -> set[str]:
    """What pgsse.js offers on ``window.pgsse``."""
    script = (PACKAGE / "static" / "pgsse" / "pgsse.js").read_text()
    return set(re.findall(r"\b(\w+)\s*(?::|=\s*function|\()", script))


def _check_ids() -> set[str]:
    return set(re.findall(r'id="(pgsse\.[EW]\d{3})"', (PACKAGE / "checks.py").read_text()))


def _commands() -> set[str]:
    found: set[str] = set()
    for app in (PACKAGE, REPOSITORY / "demo" / "chat"):
        found.update(path.stem for path in (app / "management" / "commands").glob("[!_]*.py"))
    import django.core.management

    found.update(django.core.management.get_commands())
    return found


def _permissions() -> set[str]:
    from django.apps import apps

    return {
        f"pgsse.{action}_{model._meta.model_name}"
        for model in apps.get_app_config("pgsse").get_models()
        for action in model._meta.default_permissions
    }


def _defines(path: Path, name: str) -> bool:
    """Whether the Python file at ``path`` defines a function or class ``name``."""
    tree = ast.parse(path.read_text())
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return any(isinstance(node, kinds) and node.name == name for node in ast.walk(tree))


class References:
    """What exists, read once per build."""

    def __init__(self) -> None:
        _django_ready()
        from pgsse.conf import PgsseSettings

        self.settings = {field.name: field for field in dataclasses.fields(PgsseSettings)}
        self.loggers = _logger_names()
        self.script = _script_functions()
        self.checks = _check_ids()
        self.commands = _commands()
        self.permissions = _permissions()

    def problem(self, text: str) -> str | None:
        """What is wrong with the inline literal ``text`` as a reference; None if nothing
        (or if it is no reference at all)."""
        text = text.strip()
        if match := _PATH.match(text):
            return self._path_problem(match.group(1), match.group(2))
        if _CHECK_ID.match(text):
            return None if text in self.checks else f"no system check {text} in checks.py"
        if _PERMISSION.match(text):
            return None if text in self.permissions else f"pgsse's models have no {text}"
        if (match := _NAME.match(text)) and not text.endswith(_FILE_SUFFIXES):
            return self._name_problem(match.group(1))
        for key in _SETTING.findall(text):
            if key not in self.settings:
                return f"PGSSE has no setting {key!r}"
        if (match := _COMMAND.match(text)) and match.group(1) not in self.commands:
            return f"no management command {match.group(1)!r}"
        return None

    def _path_problem(self, path: str, test: str | None) -> str | None:
        if path.startswith(_BUILT):
            return None  # made by a build, not kept in the repository
        target = REPOSITORY / path
        if not target.exists():
            return f"no file or folder {path} in the repository"
        if test is not None and not (target.is_file() and _defines(target, test)):
            return f"{path} defines no {test}"
        return None

    def _name_problem(self, dotted: str) -> str | None:
        if dotted in self.loggers or _resolves(dotted):
            return None
        if dotted.count(".") == 1 and dotted.split(".")[1] in self.script:
            return None  # pgsse.js: window.pgsse.<function>
        return f"{dotted} names nothing in the package"


def _literals(doctree: nodes.document) -> Iterator[nodes.literal]:
    for node in doctree.findall(nodes.literal):
        if not isinstance(node.parent, nodes.literal_block):
            yield node


def check_page(app: Sphinx, doctree: nodes.document) -> None:
    references = _references(app)
    for literal in _literals(doctree):
        problem = references.problem(literal.astext())
        if problem is not None:
            logger.warning(
                "code reference `%s`: %s", literal.astext(), problem,
                location=literal, type="code_references", subtype="missing",
            )  # fmt: skip
    if app.env.docname == "configuration":
        _check_settings_tables(app, doctree, references)


def _check_settings_tables(app: Sphinx, doctree: nodes.document, references: References) -> None:
    listed = set()
    for table in doctree.findall(nodes.table):
        rows = list(table.findall(nodes.row))
        if not rows or [entry.astext() for entry in rows[0].children] != ["key", "type", "default"]:
            continue
        for row in rows[1:]:
            key, _type, default = row.children
            name = key.astext().strip()
            listed.add(name)
            field = references.settings.get(name)
            if field is None:
                continue  # reported as a code reference already, if written as one
            problem = _default_problem(field, default)
            if problem is not None:
                logger.warning(
                    "settings table: %s", problem, location=row,
                    type="code_references", subtype="default",
                )  # fmt: skip
    for name in sorted(set(references.settings) - listed):
        logger.warning(
            "settings table: PGSSE[%r] is a setting, but no table of this page lists it",
            name, location=doctree, type="code_references", subtype="undocumented",
        )  # fmt: skip


def _default_problem(field: dataclasses.Field[Any], cell: nodes.Element) -> str | None:
    first = next(iter(cell.findall(nodes.literal)), None)
    if first is None:
        return None
    try:
        written = ast.literal_eval(first.astext())
    except (ValueError, SyntaxError):
        return None  # not a literal: prose, checked by a reader
    if field.default is not dataclasses.MISSING:
        actual = field.default
    elif field.default_factory is not dataclasses.MISSING:
        actual = field.default_factory()
    else:
        return None
    if written != actual or type(written) is not type(actual):
        return f"{field.name} defaults to {actual!r} in pgsse.conf, not {written!r}"
    return None


def _references(app: Sphinx) -> References:
    found = getattr(app, "_code_references", None)
    if found is None:
        found = References()
        app._code_references = found  # type: ignore[attr-defined]
    return found


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("doctree-read", check_page)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
