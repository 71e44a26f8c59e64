"""The security reviewers' tools, confined to the review root (``$SECURITY_REVIEW_ROOT``).

Four read-only tools look at the code (``list_files``, ``read_file``, ``search_code``,
``check_dependencies``); one side-effect tool changes it (``apply_fix``, gated by a human and run
once per idempotency key by the effects ledger). Every path an agent passes is relative to the
review root and resolved (symlinks followed) before use: anything that lands outside the root
(``../``, an absolute path, a symlink out) is refused with a ``ToolError``, so an agent cannot
read or write the rest of the machine whatever it asks for.

Without ``SECURITY_REVIEW_ROOT`` the root is a working copy of the shipped sample app under
``.data/security-review/``, made on first use; ``reset_working_copy()`` (the CLI does it first)
restores it.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from durable_agents.tools import ToolContext, ToolError, tool

ROOT_ENV = "SECURITY_REVIEW_ROOT"
DEFAULT_ROOT = Path(".data") / "security-review" / "sample_app"
"""The working copy reviewed (and fixed) when ``$SECURITY_REVIEW_ROOT`` is unset."""
SAMPLE_APP = Path(__file__).resolve().parent / "sample_app"
"""The shipped, deliberately vulnerable sample application."""
ADVISORIES = Path(__file__).resolve().parent / "advisories.json"
"""The local advisory database ``check_dependencies`` reads (no network needed)."""

_first_use = threading.Lock()

SKIPPED = frozenset({"__pycache__", ".pytest_cache", ".git", ".mypy_cache", ".ruff_cache"})
"""Directories no tool looks into: caches and VCS data, not the code under review."""
MAX_FILES = 500
MAX_LINES = 400
"""Lines one ``read_file`` call returns at most."""
MAX_FILE_BYTES = 1 << 20
MAX_MATCHES = 200
MAX_LINE_CHARS = 400
"""A matched line longer than this is cut in results (minified code would flood the model)."""
MAX_DIFF_CHARS = 20_000


def _copy_ignore(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n in SKIPPED or n.endswith(".pyc")}


def copy_tree(source: Path, target: Path) -> None:
    """Copy a code tree without its caches."""
    shutil.copytree(source, target, ignore=_copy_ignore)


def reset_working_copy(root: Path | None = None) -> Path:
    """Replace the review root (default: ``review_root_path()``) with a fresh copy of the
    shipped sample app; returns it."""
    root = root or review_root_path()
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    copy_tree(SAMPLE_APP, root)
    return root


def review_root_path() -> Path:
    """The configured review root, as configured (not checked)."""
    raw = os.environ.get(ROOT_ENV, "").strip()
    return Path(raw) if raw else DEFAULT_ROOT


def review_root() -> Path:
    """The review root, resolved; the default working copy is made on first use."""
    root = review_root_path()
    if not root.exists() and ROOT_ENV not in os.environ:
        # Parallel reviewers' first tool calls arrive together, in threads of one worker.
        with _first_use:
            if not root.exists():
                reset_working_copy(root)
    if not root.is_dir():
        raise ToolError(f"the review root {str(root)!r} ({ROOT_ENV}) is not a directory")
    return root.resolve()


def confine(root: Path, path: str) -> Path:
    """``path`` (relative to ``root``) resolved, if it stays inside ``root``.

    Raises:
        ToolError: It leads outside ``root`` (``..``, absolute, a symlink out) or is malformed.
    """
    if not path.strip() or "\x00" in path:
        raise ToolError(f"invalid path {path!r}")
    resolved = (root / path).resolve()
    if not resolved.is_relative_to(root):
        raise ToolError(
            f"path {path!r} is outside the review root: paths are relative to it, e.g. "
            "'app/users.py' (use list_files)"
        )
    return resolved


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _walk(root: Path, start: Path) -> Iterator[Path]:
    """Files under ``start`` (sorted, caches skipped, nothing outside ``root``)."""
    for directory, dirs, files in os.walk(start):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED)
        for name in sorted(files):
            if name.endswith(".pyc"):
                continue
            path = Path(directory) / name
            if path.resolve().is_relative_to(root):  # a symlink out is not ours to show
                yield path


def _read_text(path: Path, shown: str) -> str:
    if not path.is_file():
        raise ToolError(f"no such file {shown!r} (use list_files)")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ToolError(f"{shown!r} is larger than {MAX_FILE_BYTES} bytes")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ToolError(f"{shown!r} is not a UTF-8 text file") from None


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- read-only -----------------------------------------------------------------------------


class ListFilesArgs(BaseModel):
    directory: str = Field(default=".", description="Directory relative to the review root.")
    pattern: str = Field(
        default="*", max_length=200, description="Glob on the file name, e.g. '*.py'."
    )


@tool(effect="read_only")
def list_files(args: ListFilesArgs, ctx: ToolContext) -> dict[str, Any]:
    """List the files of the code under review (paths relative to its root, with sizes).

    Start here to see what the project contains. Caches and .git are left out.
    """
    root = review_root()
    start = confine(root, args.directory)
    if not start.is_dir():
        raise ToolError(f"no such directory {args.directory!r}")
    files = [
        {"path": _relative(root, p), "bytes": p.stat().st_size}
        for p in _walk(root, start)
        if fnmatch.fnmatch(p.name, args.pattern)
    ]
    return {"files": files[:MAX_FILES], "truncated": len(files) > MAX_FILES}


class ReadFileArgs(BaseModel):
    path: str = Field(description="File relative to the review root, e.g. 'app/users.py'.")
    start_line: int = Field(default=1, ge=1, description="First line to return (1-based).")
    end_line: int | None = Field(
        default=None, ge=1, description=f"Last line (inclusive); at most {MAX_LINES} lines."
    )


@tool(effect="read_only")
def read_file(args: ReadFileArgs, ctx: ToolContext) -> dict[str, Any]:
    """Read lines of a file under review, exactly as they are (``content``), with the range
    returned, the file's total line count and its sha256."""
    root = review_root()
    path = confine(root, args.path)
    text = _read_text(path, args.path)
    lines = text.splitlines(keepends=True)
    start = args.start_line
    end = min(args.end_line or len(lines), len(lines), start + MAX_LINES - 1)
    if start > max(len(lines), 1):
        raise ToolError(f"{args.path!r} has {len(lines)} lines; start_line {start} is past it")
    return {
        "path": _relative(root, path),
        "start_line": start,
        "end_line": end,
        "total_lines": len(lines),
        "sha256": sha256(text),
        "content": "".join(lines[start - 1 : end]),
    }


class SearchCodeArgs(BaseModel):
    pattern: str = Field(min_length=1, max_length=500, description="Python regular expression.")
    glob: str = Field(
        default="*.py", max_length=200, description="Which files: a glob on the name or path."
    )
    ignore_case: bool = False
    max_results: int = Field(default=100, ge=1, le=MAX_MATCHES)


@tool(effect="read_only")
def search_code(args: SearchCodeArgs, ctx: ToolContext) -> dict[str, Any]:
    """Search the code under review for a regular expression, line by line.

    Returns every matching line with its file (relative path) and 1-based line number.
    """
    try:
        regex = re.compile(args.pattern, re.IGNORECASE if args.ignore_case else 0)
    except re.error as err:
        raise ToolError(f"invalid regular expression {args.pattern!r}: {err}") from None
    root = review_root()
    matches: list[dict[str, Any]] = []
    searched = 0
    for path in _walk(root, root):
        relative = _relative(root, path)
        if not (fnmatch.fnmatch(path.name, args.glob) or fnmatch.fnmatch(relative, args.glob)):
            continue
        try:
            text = _read_text(path, relative)
        except ToolError:
            continue  # binary or huge: not code to search
        searched += 1
        for number, line in enumerate(text.splitlines(), start=1):
            if regex.search(line):
                matches.append({"file": relative, "line": number, "text": line[:MAX_LINE_CHARS]})
    return {
        "pattern": args.pattern,
        "files_searched": searched,
        "matches": matches[: args.max_results],
        "truncated": len(matches) > args.max_results,
    }


class CheckDependenciesArgs(BaseModel):
    manifest: str = Field(
        default="requirements.txt", description="The requirements file, relative to the root."
    )


_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*?)\s*$")


def _version(text: str) -> tuple[int, ...]:
    """The release numbers of a version (``2.19.1`` -> ``(2, 19, 1)``; suffixes ignored)."""
    match = re.match(r"\d+(\.\d+)*", text.strip())
    if match is None:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(part) for part in match.group().split("."))


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def load_advisories() -> list[dict[str, Any]]:
    data = json.loads(ADVISORIES.read_text())
    advisories: list[dict[str, Any]] = data["advisories"]
    return advisories


def _affected(version: str, advisory: dict[str, Any]) -> bool:
    introduced = _version(str(advisory.get("introduced", "0")))
    return introduced <= _version(version) < _version(str(advisory["fixed"]))


@tool(effect="read_only")
def check_dependencies(args: CheckDependenciesArgs, ctx: ToolContext) -> dict[str, Any]:
    """Check a pip requirements file against the local advisory database.

    Returns each requirement (name, version spec, line), the pinned ones that a published
    advisory affects (with its id, severity, summary and the first fixed version), and those
    not pinned to one version (which cannot be checked).
    """
    root = review_root()
    text = _read_text(confine(root, args.manifest), args.manifest)
    advisories = load_advisories()
    packages, vulnerable, unpinned = [], [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue  # comments and pip options (-r, -e, --index-url)
        match = _REQUIREMENT.match(line)
        if match is None:
            continue
        name, spec = match.group(1), match.group(3).split(";", 1)[0].strip()
        entry = {"name": name, "spec": spec, "line": number}
        packages.append(entry)
        if not spec.startswith("==") or "*" in spec:
            unpinned.append(entry)
            continue
        version = spec[2:].strip()
        for advisory in advisories:
            if _normalize(advisory["package"]) == _normalize(name) and _affected(version, advisory):
                vulnerable.append(
                    entry
                    | {"version": version}
                    | {k: advisory[k] for k in ("id", "severity", "summary", "fixed")}
                )
    return {
        "manifest": args.manifest,
        "advisory_database": f"{ADVISORIES.name} ({len(advisories)} advisories)",
        "packages": packages,
        "vulnerable": vulnerable,
        "unpinned": unpinned,
    }


# --- side effect ---------------------------------------------------------------------------


class ApplyFixArgs(BaseModel):
    file: str = Field(description="The file to replace, relative to the review root.")
    content: str = Field(max_length=MAX_FILE_BYTES, description="Its complete new content.")


@tool(effect="side_effect")
def apply_fix(args: ApplyFixArgs, ctx: ToolContext) -> dict[str, Any]:
    """Write a verified fix into the code under review: replace one existing file's content.

    Only after the fix passed the project's tests. Returns the unified diff of the change.
    """
    root = review_root()
    target = confine(root, args.file)
    before = _read_text(target, args.file)
    relative = _relative(root, target)
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            args.content.splitlines(keepends=True),
            fromfile=f"a/{relative}",
            tofile=f"b/{relative}",
        )
    )
    written = before != args.content
    if written:
        # Atomically: a reader (or a crash) sees the old file or the new one, never half.
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(args.content)
        os.chmod(temporary, target.stat().st_mode)
        os.replace(temporary, target)
    return {
        "file": relative,
        "previous_sha256": sha256(before),
        "sha256": sha256(args.content),
        "diff": diff[:MAX_DIFF_CHARS],
        "written": written,
    }


READ_TOOLS = (list_files, read_file, search_code)
SECURITY_TOOLS = (list_files, read_file, search_code, check_dependencies, apply_fix)

__all__ = [
    "ADVISORIES",
    "READ_TOOLS",
    "ROOT_ENV",
    "SAMPLE_APP",
    "SECURITY_TOOLS",
    "apply_fix",
    "check_dependencies",
    "confine",
    "list_files",
    "read_file",
    "reset_working_copy",
    "review_root",
    "search_code",
]
