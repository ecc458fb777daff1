"""Sphinx configuration of django-pgsse's documentation site: ``make docs``.

The pages are the Markdown files of this folder, as GitHub shows them (myst-parser reads
them); this file, ``index.md`` and ``changelog.md`` only put a site around them. The build
runs with warnings as errors in ``make test``: a link to a page or an anchor that does not
exist, or a code reference that names nothing (``_ext/code_references.py``), fails it.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS / "_ext"), str(DOCS.parent / "src")]

project = "django-pgsse"
author = "django-pgsse maintainers"
copyright = "django-pgsse maintainers"

extensions = ["myst_parser", "code_references"]

root_doc = "index"
source_suffix = {".md": "markdown"}
# README.md is the folder's index on GitHub; the site's index.md includes it.
exclude_patterns = ["_build", "_ext", "README.md"]

# Every heading gets the anchor GitHub gives it, so that one link works in both places.
myst_heading_anchors = 6
myst_enable_extensions = ["colon_fence"]
# A link to a page or an anchor that does not exist is a warning (an error in make test).
myst_all_links_external = False

html_theme = "furo"
html_title = "django-pgsse"
html_static_path: list[str] = []
html_theme_options = {
    "source_repository": "https://github.com/django-pgsse/django-pgsse/",
    "source_branch": "main",
    "source_directory": "docs/",
}
# Links to source files outside docs/ point at the repository, where they live.
code_references_repository = "https://github.com/django-pgsse/django-pgsse/blob/main/"
