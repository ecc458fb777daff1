"""The documentation site's build (``make docs``) fails on what would rot: a link to a page
or an anchor that does not exist, and a code reference naming nothing
(docs/_ext/code_references.py). Pages are built here with the site's own configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import REPOSITORY

sys.path.insert(0, str(REPOSITORY / "docs" / "_ext"))

from code_references import References

INDEX = """# Probe

```{toctree}
page
```
"""


def build(tmp_path: Path, page: str) -> subprocess.CompletedProcess[str]:
    """``page`` built as the site builds (docs/conf.py, warnings as errors)."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "index.md").write_text(INDEX)
    (source / "page.md").write_text(page)
    return subprocess.run(
        [
            sys.executable, "-m", "sphinx", "-b", "html", "-n", "-W", "--keep-going", "-q",
            "-c", str(REPOSITORY / "docs"), str(source), str(tmp_path / "html"),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


GOOD = """# Page

## `pgsse.close_streams(*, user=None, channel=None)`

[Here](#pgsseclose_streams-usernone-channelnone), [the index](index.md#probe):
`pgsse.close_streams()`, `tests/test_docs.py::test_pages_that_say_only_true_things_build`,
`pgsse.W006`, `PGSSE["MAX_STREAMS"]`, `manage.py pgsse_prune`, `pgsse.connect(url)`.
"""


def test_pages_that_say_only_true_things_build(tmp_path: Path) -> None:
    result = build(tmp_path, GOOD)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("mistake", "says"),
    [
        ("[gone](#pgsseclose_streamsuser-channel---int)", "target not found"),
        ("[gone](index.md#nowhere)", "local id not found in doc 'index': 'nowhere'"),
        ("[gone](nowhere.md)", "target not found: 'nowhere.md'"),
        ("`pgsse.close_stream()`", "pgsse.close_stream names nothing in the package"),
        ("`tests/test_docs.py::test_gone`", "tests/test_docs.py defines no test_gone"),
    ],
)
def test_a_broken_link_anchor_or_reference_fails_the_build(
    tmp_path: Path, mistake: str, says: str
) -> None:
    result = build(tmp_path, GOOD + "\n" + mistake + "\n")
    assert result.returncode != 0
    assert says in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("literal", "problem"),
    [
        ("src/pgsse/hub.py", None),
        ("docs/_build/html", None),
        ("tests/nowhere.py", "no file or folder tests/nowhere.py in the repository"),
        ("pgsse.testing.capture_events()", None),
        ("pgsse.hub.current_hub().stats()", None),
        ("pgsse.asgi.wrap(SentryAsgiMiddleware(get_asgi_application()))", None),
        ("pgsse.stream", None),  # a module, and the logger of open and closed streams
        ("pgsse.js", None),  # a file
        ("pgsse.retryDelay(attempt, retryAfter)", None),  # pgsse.js
        ("pgsse.publsh()", "pgsse.publsh names nothing in the package"),
        ("pgsse.E012", None),
        ("pgsse.W099", "no system check pgsse.W099 in checks.py"),
        ("pgsse.change_event", None),
        ("pgsse.delete_channel", None),
        ("pgsse.change_channelz", "pgsse's models have no pgsse.change_channelz"),
        ('PGSSE["REAUTHORIZE_INTERVAL"] = None', None),
        ("PGSSE['HEARTBEAT']", "PGSSE has no setting 'HEARTBEAT'"),
        ("python manage.py chat_token <username>", None),
        ("manage.py migrate", None),
        ("manage.py pgsse_purge", "no management command 'pgsse_purge'"),
        ("DATABASES", None),  # not a reference at all
    ],
)
def test_what_the_checker_takes_for_a_reference_to_nothing(
    literal: str, problem: str | None
) -> None:
    assert References().problem(literal) == problem
