"""`{{ name }}` placeholders in shell text (a `command`, a batch `script`), filled so that a
value is always one literal piece of text, whatever it holds and wherever it sits.

The template is read as bash reads quotes: each placeholder is escaped for the context it
sits in —
- a plain word (also inside `$( … )`): `shlex.quote`;
- inside '…': every `'` of the value becomes `'\\''`;
- inside "…": `\\`, `"`, `$` and a backtick are backslash-escaped;
- inside $'…': `\\` and `'` are backslash-escaped;
- in an unquoted here-document (`<<EOF`): `\\`, `$` and a backtick are backslash-escaped;
- in a quoted here-document (`<<'EOF'`): the value as it is, refused if it holds a line break;
- in a comment: `shlex.quote`, line breaks made spaces;
- inside backticks or a quoted here-document: refused (`UNSAFE`): validation says so.
So a value such as `$(id)` or `'; id; '` is text in every context, never code.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_HEREDOC = re.compile(r"<<(-?)\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")


class UnsafeValue(ValueError):
    """A placeholder where no escaping can keep a value literal."""


def _double(value: str) -> str:
    return re.sub(r'([\\"$`])', r"\\\1", value)


def _heredoc(value: str) -> str:
    return re.sub(r"([\\$`])", r"\\\1", value)


def _ansi(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _single(value: str) -> str:
    return value.replace("'", "'\\''")


def _comment(value: str) -> str:
    return shlex.quote(value.replace("\n", " ").replace("\r", " "))


UNSAFE = {
    "literal": "a quoted here-document (<<'EOF'), where no value can be escaped: "
    "use an unquoted one (<<EOF)",
    "backtick": "backticks, whose own escaping would undo the quoting: use $( … )",
}
"""Contexts where no placeholder may sit, with what to write instead."""

ESCAPES: dict[str, Callable[[str], str]] = {
    "word": shlex.quote,
    "single": _single,
    "double": _double,
    "ansi": _ansi,
    "heredoc": _heredoc,
    "comment": _comment,
}


def contexts(template: str) -> dict[int, str]:
    """The quoting context (a key of ESCAPES) at the start of each placeholder, by offset."""
    starts = {m.start() for m in PLACEHOLDER.finditer(template)}
    found: dict[int, str] = {}
    stack: list[str] = ["word"]  # word | subst | backtick | double | single | ansi
    heredocs: list[tuple[str, bool, bool]] = []  # (delimiter, strip tabs, quoted)
    i, n = 0, len(template)
    while i < n:
        if i in starts:
            top = stack[-1]
            found[i] = "word" if top == "subst" else top
            i = template.index("}}", i) + 2
            continue
        c, top = template[i], stack[-1]
        if top == "single":
            if c == "'":
                stack.pop()
        elif top == "ansi":
            if c == "\\":
                i += 1
            elif c == "'":
                stack.pop()
        elif top == "double":
            if c == "\\":
                i += 1
            elif c == '"':
                stack.pop()
            elif template.startswith("$(", i):
                stack.append("subst")
                i += 1
            elif c == "`":
                stack.append("backtick")
        elif c == "\\":
            i += 1
        elif c == "'":
            stack.append("single")
        elif template.startswith("$'", i):
            stack.append("ansi")
            i += 1
        elif c == '"':
            stack.append("double")
        elif template.startswith("$(", i):
            stack.append("subst")
            i += 1
        elif c == ")" and top == "subst":
            stack.pop()
        elif c == "`":
            if top == "backtick":
                stack.pop()
            else:
                stack.append("backtick")
        elif c == "#" and (i == 0 or template[i - 1] in " \t\n;&|("):
            end = template.find("\n", i)
            end = n if end < 0 else end
            found.update({s: "comment" for s in starts if i <= s < end})
            i = end
            continue
        elif (m := _HEREDOC.match(template, i)) and not template.startswith("<<<", i):
            heredocs.append((m.group(3), m.group(1) == "-", bool(m.group(2))))
            i = m.end()
            continue
        elif c == "\n" and heredocs:
            i = _skip_heredocs(template, i + 1, heredocs, starts, found)
            heredocs = []
            continue
        i += 1
    return found


def _skip_heredocs(
    template: str,
    i: int,
    heredocs: list[tuple[str, bool, bool]],
    starts: set[int],
    found: dict[int, str],
) -> int:
    """Past the bodies of the here-documents opened on the line before `i`."""
    for delimiter, strip_tabs, quoted in heredocs:
        while i < len(template):
            end = template.find("\n", i)
            end = len(template) if end < 0 else end
            line = template[i:end]
            if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                i = end + 1
                break
            kind = "literal" if quoted else "heredoc"
            found.update({s: kind for s in starts if i <= s < end})
            i = end + 1
    return i


def render(template: str, values: dict[str, Any]) -> str:
    """Every `{{ name }}` replaced by `str(values[name])`, escaped for where it sits
    (KeyError for a name without a value; UnsafeValue for a placeholder in an UNSAFE context,
    which validation refuses)."""
    where = contexts(template)

    def fill(match: re.Match[str]) -> str:
        context = where.get(match.start(), "word")
        if context in UNSAFE:
            raise UnsafeValue(f"{{{{ {match.group(1)} }}}} sits in {UNSAFE[context]}")
        return ESCAPES[context](str(values[match.group(1)]))

    return PLACEHOLDER.sub(fill, template)


def as_text(value: Any) -> Any:
    """An upstream result as a placeholder shows it: text and numbers as they are, anything
    else (lists, mappings, None, booleans) as JSON."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return value
    return json.dumps(value)
