"""What the security agents do on the offline ``scripted`` model.

Every script works from tool results, never from names written into it: the specialists search
the code under review with the patterns below and report each hit's file, line and text; the
synthesizer ranks what the specialists reported; the fixer reads the file its task names and
rewrites the string-built SQL it finds there. Rename the vulnerable function, move the secret or
pin another package, and the reports follow.

Each reply is chosen from what the conversation already holds (the first step whose results are
missing), so a re-issued model call gets the same reply.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import Any

from durable_agents.testing import ScriptedCall, ScriptedReply, ScriptView
from examples.security_review.models import (
    SEVERITIES,
    Finding,
    Findings,
    FixProposal,
    assess,
    severity_rank,
)

# --- the patterns the specialists search for ------------------------------------------------

SQL_BUILT_FROM_STRINGS = (
    r"""execute(many)?\(\s*f["']"""  # conn.execute(f"... {x}")
    r"""|\bf["'](SELECT|INSERT|UPDATE|DELETE)\b.*\{"""  # sql = f"SELECT ... {x}"
    r"""|["'](SELECT|INSERT|UPDATE|DELETE)\b.*["']\s*(%|\+|\.format\()"""  # "..." % x
)
COMMAND_INJECTION = r"""\bos\.system\(|\bsubprocess\.\w+\(.*shell\s*=\s*True|\beval\(|\bexec\("""
HARDCODED_SECRET = (
    r"""\b\w*(secret|passw(or)?d|token|api_?key|private_?key)\w*\s*[:=]\s*["'][^"'\s]{8,}["']"""
)
WEAK_PASSWORD_HASH = r"""hashlib\.(md5|sha1)\(|hashlib\.new\(\s*["'](md5|sha1)["']"""
NON_CONSTANT_TIME_COMPARE = r"""password_hash\s*[!=]=|[!=]=\s*[\w.]*password_hash"""
PERSONAL_DATA_LOGGED = (
    r"""\b(log|logger|logging)\.(debug|info|warning|error|exception|critical)\("""
    r""".*\b(password|passwd|email|ssn|phone|card|token|secret)"""
)
SECRET_WORDS = re.compile(r"password|passwd|secret|token", re.IGNORECASE)

_DEF = re.compile(r"^\s*(async\s+)?def\s+(\w+)\s*\(")


def _results(view: ScriptView, tool_name: str) -> list[dict[str, Any]]:
    """Every successful result of ``tool_name`` so far, parsed."""
    parsed = []
    for message in view.results(tool_name):
        if message.is_error:
            continue
        try:
            value = json.loads(message.content)
        except ValueError:
            continue
        if isinstance(value, dict):
            parsed.append(value)
    return parsed


def _matches(view: ScriptView, pattern: str) -> list[dict[str, Any]]:
    """The hits of the ``search_code`` call made with ``pattern``, test code left out (test
    fixtures hold fake passwords and attack strings on purpose)."""
    for result in _results(view, "search_code"):
        if result.get("pattern") == pattern:
            return [m for m in result.get("matches") or [] if not _is_test(str(m.get("file")))]
    return []


def _is_test(path: str) -> bool:
    p = PurePosixPath(path)
    return (
        bool({"tests", "test"} & set(p.parts[:-1]))
        or p.name.startswith("test_")
        or (p.name == "conftest.py")
    )


def _search(pattern: str) -> ScriptedCall:
    return ScriptedCall("search_code", {"pattern": pattern, "ignore_case": True})


def _searched(view: ScriptView, patterns: tuple[str, ...]) -> bool:
    done = {r.get("pattern") for r in _results(view, "search_code")}
    return all(p in done for p in patterns) or len(view.results("search_code")) >= len(patterns)


def _report(findings: list[Finding]) -> ScriptedReply:
    ordered = sorted(findings, key=lambda f: (severity_rank(f.severity), f.file, f.line))
    return ScriptedReply(text=Findings(findings=ordered).model_dump_json())


def _code(match: dict[str, Any]) -> str:
    return str(match.get("text", "")).strip()


# --- security-deps ---------------------------------------------------------------------------


def deps_script(view: ScriptView) -> ScriptedReply:
    """Find the requirements files, check each against the advisory database, report."""
    if not view.results("list_files"):
        return ScriptedReply(
            text="Looking for dependency manifests.",
            calls=[ScriptedCall("list_files", {"pattern": "requirements*.txt"})],
        )
    listing = next(iter(_results(view, "list_files")), {})
    manifests = [str(f["path"]) for f in listing.get("files") or [] if "path" in f]
    if manifests and not view.results("check_dependencies"):
        return ScriptedReply(
            text=f"Checking {', '.join(manifests)} against the advisory database.",
            calls=[ScriptedCall("check_dependencies", {"manifest": m}) for m in manifests],
        )
    findings = []
    for result in _results(view, "check_dependencies"):
        manifest = str(result.get("manifest"))
        for v in result.get("vulnerable") or []:
            findings.append(
                Finding(
                    file=manifest,
                    line=int(v.get("line", 0)),
                    category="vulnerable-dependency",
                    severity=v.get("severity") if v.get("severity") in SEVERITIES else "high",
                    evidence=f"{v.get('name')}{v.get('spec')} is affected by {v.get('id')}: "
                    f"{v.get('summary')}",
                    recommendation=f"Upgrade {v.get('name')} to {v.get('fixed')} or later.",
                )
            )
        for u in result.get("unpinned") or []:
            findings.append(
                Finding(
                    file=manifest,
                    line=int(u.get("line", 0)),
                    category="unpinned-dependency",
                    severity="low",
                    evidence=f"{u.get('name')} {u.get('spec') or '(any version)'} is not pinned, "
                    "so it cannot be checked against advisories",
                    recommendation=f"Pin {u.get('name')} to an exact, reviewed version.",
                )
            )
    return _report(findings)


# --- security-auth ---------------------------------------------------------------------------

_AUTH_PATTERNS = (HARDCODED_SECRET, WEAK_PASSWORD_HASH, NON_CONSTANT_TIME_COMPARE)


def _redacted(code: str) -> str:
    """The line with the secret's value masked: the report must not spread the secret."""

    def mask(match: re.Match[str]) -> str:
        value = match.group(2)
        return f"{match.group(1)}{value[:4]}…({len(value)} chars){match.group(1)}"

    return re.sub(r"""(["'])([^"'\s]{8,})\1""", mask, code)


def auth_script(view: ScriptView) -> ScriptedReply:
    """Search for hard-coded secrets, weak password hashing and timing-unsafe comparisons."""
    if not _searched(view, _AUTH_PATTERNS):
        return ScriptedReply(
            text="Searching for hard-coded secrets and how passwords are hashed and compared.",
            calls=[_search(p) for p in _AUTH_PATTERNS],
        )
    findings = [
        Finding(
            file=m["file"],
            line=m["line"],
            category="hardcoded-secret",
            severity="high",
            evidence=_redacted(_code(m)),
            recommendation="Load the secret from the environment or a secret manager, and "
            "rotate it: it is in the source history.",
        )
        for m in _matches(view, HARDCODED_SECRET)
    ]
    findings += [
        Finding(
            file=m["file"],
            line=m["line"],
            category="weak-password-hash",
            severity="high",
            evidence=_code(m),
            recommendation="Hash passwords with a salted, slow KDF (hashlib.scrypt, PBKDF2 "
            "with many iterations, argon2 or bcrypt), never MD5/SHA-1.",
        )
        for m in _matches(view, WEAK_PASSWORD_HASH)
    ]
    findings += [
        Finding(
            file=m["file"],
            line=m["line"],
            category="timing-unsafe-comparison",
            severity="low",
            evidence=_code(m),
            recommendation="Compare secrets with hmac.compare_digest (constant time).",
        )
        for m in _matches(view, NON_CONSTANT_TIME_COMPARE)
    ]
    return _report(findings)


# --- security-injection ----------------------------------------------------------------------

_INJECTION_PATTERNS = (SQL_BUILT_FROM_STRINGS, COMMAND_INJECTION)
_CONTEXT_LINES = 40
"""How far above a hit the script reads to name the function it is in."""


def _hits(view: ScriptView) -> list[tuple[str, dict[str, Any]]]:
    return [("sql-injection", m) for m in _matches(view, SQL_BUILT_FROM_STRINGS)] + [
        ("command-injection", m) for m in _matches(view, COMMAND_INJECTION)
    ]


def _enclosing_function(view: ScriptView, file: str, line: int) -> str | None:
    """The function around ``file:line``, from the ``read_file`` result that covers it."""
    for result in _results(view, "read_file"):
        if result.get("path") != file or result.get("end_line") != line:
            continue
        for text in reversed(str(result.get("content", "")).splitlines()):
            found = _DEF.match(text)
            if found:
                return found.group(2)
    return None


def injection_script(view: ScriptView) -> ScriptedReply:
    """Search for SQL and shell commands built from strings; read around each hit to name the
    function it is in; report each one."""
    if not _searched(view, _INJECTION_PATTERNS):
        return ScriptedReply(
            text="Searching for SQL built by string formatting and for shell commands.",
            calls=[_search(p) for p in _INJECTION_PATTERNS],
        )
    hits = _hits(view)
    if hits and not view.results("read_file"):
        return ScriptedReply(
            text=f"{len(hits)} suspicious line(s); reading the code around each.",
            calls=[
                ScriptedCall(
                    "read_file",
                    {
                        "path": m["file"],
                        "start_line": max(1, m["line"] - _CONTEXT_LINES),
                        "end_line": m["line"],
                    },
                )
                for _, m in hits
            ],
        )
    findings = []
    for category, m in hits:
        function = _enclosing_function(view, m["file"], m["line"])
        where = f" (in {function}())" if function else ""
        sql = category == "sql-injection"
        findings.append(
            Finding(
                file=m["file"],
                line=m["line"],
                category=category,
                severity="critical" if sql else "high",
                evidence=f"{_code(m)}{where}",
                recommendation="Use a parameterized query (placeholders such as ?, values "
                "passed separately); never format input into SQL."
                if sql
                else "Pass arguments as a list without a shell; never evaluate input.",
            )
        )
    return _report(findings)


# --- security-data ---------------------------------------------------------------------------


def data_script(view: ScriptView) -> ScriptedReply:
    """Search for personal data and credentials written to logs."""
    if not view.results("search_code"):
        return ScriptedReply(
            text="Searching for personal data and credentials written to logs.",
            calls=[_search(PERSONAL_DATA_LOGGED)],
        )
    findings = []
    for m in _matches(view, PERSONAL_DATA_LOGGED):
        credential = bool(SECRET_WORDS.search(_code(m)))
        findings.append(
            Finding(
                file=m["file"],
                line=m["line"],
                category="credential-logged" if credential else "personal-data-logged",
                severity="high" if credential else "medium",
                evidence=_code(m),
                recommendation="Never log passwords or secrets; log a user id instead."
                if credential
                else "Log a user id, not personal data (or mask it); logs outlive consent.",
            )
        )
    return _report(findings)


# --- security-synthesizer --------------------------------------------------------------------


def _branch_findings(task: str) -> tuple[list[str], list[Finding]]:
    """The specialists (agents) and their findings, from the synthesizer's task: the parallel
    workflow's "Combine these answers into one:" followed by a JSON list of the answers."""
    start = task.find("[")
    try:
        answers = json.loads(task[start:]) if start >= 0 else []
    except ValueError:
        return [], []
    agents, findings = [], []
    for answer in answers if isinstance(answers, list) else []:
        if not isinstance(answer, dict):
            continue
        agents.append(str(answer.get("agent")))
        try:
            findings += Findings.model_validate_json(str(answer.get("output"))).findings
        except ValueError:
            continue  # an answer that is not Findings adds nothing to count
    return agents, findings


def synthesizer_script(view: ScriptView) -> ScriptedReply:
    """Rank every finding the specialists reported into one risk assessment."""
    agents, findings = _branch_findings(view.task)
    return ScriptedReply(text=assess(agents, findings).model_dump_json())


# --- security-fixer --------------------------------------------------------------------------

_FINDING = re.compile(r"<finding>\s*(\{.*?\})\s*</finding>", re.DOTALL)
_FEEDBACK = re.compile(r"<feedback>(.*?)</feedback>", re.DOTALL)
_SQL_LINE = re.compile(SQL_BUILT_FROM_STRINGS, re.IGNORECASE)
_ASSIGNED_FSTRING = re.compile(r"""^(\s*)(\w+)\s*=\s*f(["'])(.*)\3\s*$""")
_INLINE_FSTRING = re.compile(r"""execute(many)?\(\s*f(["'])(.*?)\2""")
_PLACEHOLDER = re.compile(r"""'?\{([A-Za-z_][\w.]*)\}'?""")


def fix_target(task: str) -> Finding | None:
    """The finding the fixer's task is about (``<finding>{json}</finding>``)."""
    found = _FINDING.search(task)
    if found is None:
        return None
    try:
        return Finding.model_validate_json(found.group(1))
    except ValueError:
        return None


def _failed_tests(task: str) -> list[str]:
    """The failing tests named in the feedback on the previous attempt (pytest's ``FAILED``
    lines), if the task carries any."""
    feedback = _FEEDBACK.search(task)
    if feedback is None:
        return []
    found = re.findall(r"^(?:FAILED|ERROR) (\S+)", feedback.group(1), re.MULTILINE)
    return [name.split("::")[-1] for name in found]


def _parameterize(sql: str) -> tuple[str, list[str]]:
    """``... = '{name}'`` -> ``... = ?`` and the names, in order."""
    names: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        names.append(match.group(1))
        return "?"

    return _PLACEHOLDER.sub(placeholder, sql), names


def _params(names: list[str]) -> str:
    return f"({', '.join(names)},)"


def parameterized(lines: list[str]) -> tuple[list[str], int]:
    """Rewrite string-formatted SQL into parameterized queries; the lines and how many
    statements changed."""
    out, changed = list(lines), 0
    for i, line in enumerate(lines):
        if not _SQL_LINE.search(line):
            continue
        inline = _INLINE_FSTRING.search(line)
        if inline:
            sql, names = _parameterize(inline.group(3))
            quote = inline.group(2)
            call = f"execute{inline.group(1) or ''}({quote}{sql}{quote}, {_params(names)}"
            out[i] = line[: inline.start()] + call + line[inline.end() :]
            changed += 1
            continue
        assigned = _ASSIGNED_FSTRING.match(line.rstrip("\n"))
        if not assigned:
            continue
        indent, variable, quote, body = assigned.groups()
        sql, names = _parameterize(body)
        # The query's variable is executed a few lines further down: pass the values there.
        uses = re.compile(rf"execute(many)?\(\s*{re.escape(variable)}\s*\)")
        for j in range(i + 1, min(i + 10, len(lines))):
            use = uses.search(out[j])
            if use:
                call = f"execute{use.group(1) or ''}({variable}, {_params(names)})"
                out[i] = f"{indent}{variable} = {quote}{sql}{quote}\n"
                out[j] = out[j][: use.start()] + call + out[j][use.end() :]
                changed += 1
                break
    return out, changed


def escaped(lines: list[str]) -> tuple[list[str], int]:
    """The first idea: escape single quotes in the values before they are formatted in.

    Subtly wrong on purpose (the demo's fix loop must iterate): SQLite does not treat a
    backslash as an escape character, so ``\\'`` still ends the string literal.
    """
    out, changed = [], 0
    for line in lines:
        if _SQL_LINE.search(line):
            indent = line[: len(line) - len(line.lstrip())]
            names = [m.group(1) for m in _PLACEHOLDER.finditer(line) if "." not in m.group(1)]
            for name in dict.fromkeys(names):
                out.append(f"""{indent}{name} = {name}.replace("'", "\\\\'")  # escape quotes\n""")
                changed += 1
        out.append(line)
    return out, changed


def fixer_script(view: ScriptView) -> ScriptedReply:
    """Read the file of the finding in the task, then propose its fixed content: escaping
    quotes first; a parameterized query once the feedback shows that escaping failed."""
    target = fix_target(view.task)
    if target is None:
        return ScriptedReply(text="The task names no <finding> to fix.")
    if not view.results("read_file"):
        return ScriptedReply(
            text=f"Reading {target.file} to fix the {target.category} at line {target.line}.",
            calls=[ScriptedCall("read_file", {"path": target.file, "end_line": 400})],
        )
    read = next((r for r in _results(view, "read_file") if r.get("path") == target.file), None)
    if read is None or read.get("end_line") != read.get("total_lines"):
        return ScriptedReply(text=f"I could not read all of {target.file}, so I propose no fix.")
    lines = str(read["content"]).splitlines(keepends=True)
    failed = _failed_tests(view.task)
    if failed:
        new, changed = parameterized(lines)
        summary = (
            f"Parameterized {changed} query(ies) in {target.file}: the values are passed to "
            "execute() separately, so input can never become SQL. Escaping quotes was not "
            f"enough: {len(failed)} test(s) still failed, e.g. {failed[0]}."
        )
    else:
        new, changed = escaped(lines)
        summary = f"Escaped single quotes in {changed} value(s) before they go into the SQL."
    if not changed:
        summary = f"Found no string-formatted SQL to rewrite in {target.file}."
    proposal = FixProposal(file=target.file, content="".join(new), summary=summary)
    return ScriptedReply(text=proposal.model_dump_json())
