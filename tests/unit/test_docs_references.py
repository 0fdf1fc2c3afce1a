"""No tracked file points a reader at a document a clone of the repo does not have (issue 12).

The design once lived in notes outside the repo, and comments cited them by name and section. A newcomer reads
README -> docs/design.md -> the code, so every ``.md`` a tracked file names must be a tracked file itself:

- a path (``docs/design.md``, ``../shared/x.md``) or a bare name (``feeds.md``) resolves from the repo root or from
  the citing file's folder (a Markdown link in ``docs/`` names its neighbours bare), and matches a tracked file with
  the exact case (``DESIGN.md`` is not ``docs/design.md``, even on a file system that ignores case);
- a mention of the notes' folder (``../shared``, ``/work/shared``) is refused whatever follows it.

URLs are not citations of repo files: a name inside one (``https://.../docs/graph-api/...``) is skipped.
"""

from __future__ import annotations

import posixpath
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
THIS_FILE = Path(__file__).resolve().relative_to(ROOT).as_posix()

# A relative path or bare name ending in .md. The look-behind keeps out names inside URLs and longer paths (a
# preceding "/", ":" or "."), and words that merely end in ".md"; the look-ahead stops "x.mdx" or "x.md5".
_MD_REFERENCE = re.compile(r"(?<![\w./:@-])((?:\.{1,2}/)*(?:[\w.-]+/)*[\w-][\w.-]*\.md)(?![\w-])")
_OUTSIDE_FOLDER = re.compile(r"\.\./shared\b|/work/shared\b")


@dataclass(frozen=True)
class DanglingReference:
    path: str
    line: int
    reference: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reference}"


def _resolves(reference: str, citing_path: str, tracked: frozenset[str]) -> bool:
    folder = posixpath.dirname(citing_path)
    for base in ("", folder):
        candidate = posixpath.normpath(posixpath.join(base, reference))
        if not candidate.startswith("../") and candidate in tracked:
            return True
    return False


def dangling_references(path: str, text: str, tracked: frozenset[str]) -> list[DanglingReference]:
    """Every reference in ``text`` (the content of the tracked file ``path``) that a clone cannot follow."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in _OUTSIDE_FOLDER.finditer(line):
            found.append(DanglingReference(path, number, match.group(0)))
        for match in _MD_REFERENCE.finditer(line):
            reference = match.group(1)
            if not _resolves(reference, path, tracked):
                found.append(DanglingReference(path, number, reference))
    return found


def tracked_files() -> list[str]:
    try:
        listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"not a git checkout ({error}); the references are checked where git lists the files")
    return [name for name in listing.split("\0") if name]


# --- the checker, on synthetic texts: it must catch what it exists to catch -----------------------------------------

TRACKED = frozenset({"README.md", "docs/design.md", "docs/graph-api.md", "docs/push.md", "docs/feeds.md", "app.py"})


@pytest.mark.parametrize(
    ("path", "text", "reference"),
    [
        pytest.param("app.py", '"""Rules (DESIGN.md invariants 2 and 6)."""', "DESIGN.md", id="founders-notes-name"),
        pytest.param("app.py", "# the hooks in ../shared/hooks", "../shared", id="notes-folder"),
        pytest.param("app.py", "# honoured (graph-api.md section 4)", "graph-api.md", id="bare-name-outside-docs"),
        pytest.param("README.md", "Details: docs/pricing.md.", "docs/pricing.md", id="missing-docs-page"),
        pytest.param("docs/push.md", "[the feeds](feed.md)", "feed.md", id="broken-relative-link"),
        pytest.param("docs/push.md", "[up](../DESIGN.md#invariants)", "../DESIGN.md", id="link-up-and-anchor"),
        pytest.param("app.py", "# docs/Design.md, invariant 2", "docs/Design.md", id="wrong-case"),
        pytest.param("app.py", "# notes in /work/shared", "/work/shared", id="absolute-notes-folder"),
    ],
)
def test_a_reference_a_clone_cannot_follow_is_reported(path: str, text: str, reference: str) -> None:
    found = dangling_references(path, f"first line\n{text}\n", TRACKED)

    assert [(item.line, item.reference) for item in found] == [(2, reference)]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        pytest.param("app.py", "# docs/design.md, invariant 2; docs/graph-api.md, Rate limits", id="docs-paths"),
        pytest.param("docs/push.md", "[feeds.md](feeds.md) and [design](design.md#invariants)", id="neighbour-links"),
        pytest.param("docs/push.md", "[README](../README.md)", id="link-up-to-root"),
        pytest.param("app.py", "https://developers.facebook.com/docs/graph-api/changelog/version26.0", id="url"),
        pytest.param("app.py", "https://example.com/docs/missing.md", id="md-inside-url"),
        pytest.param("app.py", 'SECRET = "stocksync/graph-api"', id="secret-name"),
        pytest.param("app.py", "README.md says so", id="root-file"),
    ],
)
def test_references_that_resolve_are_accepted(path: str, text: str) -> None:
    assert dangling_references(path, text, TRACKED) == []


def test_a_planted_reference_in_a_copy_of_a_real_file_is_caught() -> None:
    """The repo's own text, with one bad citation added: the checker sees it among everything else in the file."""
    tracked = frozenset(tracked_files())
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    planted = text + '\nSee DESIGN.md, "The flow".\n'

    found = dangling_references("docs/design.md", planted, tracked)

    assert [item.reference for item in found] == ["DESIGN.md"]


# --- the repo ---------------------------------------------------------------------------------------------------------


def test_no_tracked_file_cites_a_document_the_repo_does_not_hold() -> None:
    names = tracked_files()
    tracked = frozenset(names)
    dangling: list[DanglingReference] = []
    for name in names:
        if name == THIS_FILE:
            continue  # its examples are bad references on purpose
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary, or deleted in the working tree
        dangling.extend(dangling_references(name, text, tracked))

    assert not dangling, "references a clone of the repo cannot follow:\n" + "\n".join(map(str, dangling))


def test_the_newcomers_path_exists() -> None:
    """README -> docs/design.md -> the code: the README names the design and the Graph API page."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")

    assert "docs/design.md" in readme
    assert "docs/graph-api.md" in readme
