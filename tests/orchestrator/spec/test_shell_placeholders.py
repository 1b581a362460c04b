"""`{{ name }}` in shell text: a value is literal text wherever its placeholder sits (plain
word, quotes, here-documents, command substitutions), and a command step receives its
upstream results, as JSON, like a batch script does."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from orchestrator.engine.execute import TaskCall, execute_task, render_template
from orchestrator.errors import SpecError
from orchestrator.spec import parse_document

HOSTILE = [
    "$(touch PWNED)",
    "`touch PWNED`",
    "'; touch PWNED; '",
    '"; touch PWNED; "',
    '\\"; touch PWNED #',
    "a\ntouch PWNED",
    'it\'s "quoted" \\ $HOME',
    "",
]

TEMPLATES = {
    "word": "printf %s {{ v }}",
    "double": 'printf %s "{{ v }}"',
    "double-affixed": 'printf %s "pre-{{ v }}-post"',
    "single": "printf %s '{{ v }}'",
    "ansi": "printf %s $'{{ v }}'",
    "substitution": 'printf %s "$(printf %s {{ v }})"',
    "substitution-in-quotes": 'printf %s "$(printf %s "{{ v }}")"',
    "heredoc": "cat <<EOF | tr -d '\\n'\n{{ v }}\nEOF",
    "comment": "printf %s ok # don't {{ v }}",
}
EXPECTED = {"double-affixed": "pre-{v}-post", "comment": "ok"}


@pytest.mark.parametrize("where", sorted(TEMPLATES))
@pytest.mark.parametrize("value", HOSTILE)
def test_a_value_is_literal_text_wherever_it_sits(tmp_path: Path, where: str, value: str) -> None:
    script = render_template(TEMPLATES[where], {"v": value})
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=10
    )
    assert not (tmp_path / "PWNED").exists(), script
    if where == "heredoc":
        assert done.stdout == value.replace("\n", ""), script
    else:
        assert done.stdout == EXPECTED.get(where, "{v}").format(v=value), script


def document(command: str, **step: object) -> dict[str, object]:
    return {
        "name": "t",
        "parameters": {"x": [1, 2]},
        "steps": {
            "first": {"command": "true", "foreach": True},
            "all": {"command": command, "needs": ["first"], **step},
        },
    }


def test_upstream_placeholders_in_a_command_are_valid() -> None:
    assert parse_document(document("echo {{ first }} > seen.json"))


@pytest.mark.parametrize(
    "command, fragment",
    [
        ("cat <<'EOF'\n{{ first }}\nEOF", "quoted here-document"),
        ("echo `echo {{ first }}`", "backticks"),
        ('echo "`echo {{ first }}`"', "backticks"),
    ],
)
def test_a_placeholder_where_no_escaping_holds_is_refused(command: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_document(document(command))
    assert [i.path for i in info.value.issues] == ["steps.all.command"]
    assert fragment in str(info.value)


def test_a_command_step_receives_its_upstream_results_as_json(tmp_path: Path) -> None:
    call = TaskCall(
        campaign_id="c",
        step="all",
        kind="command",
        target='printf %s {{ first }} > seen.json; printf %s "{{ label }}" > label.txt',
        point=None,
        attempt=1,
        results_url=str(tmp_path / "results"),
    )
    upstream = {"first": [{"y": 1}, {"y": "$(touch PWNED)"}], "label": "it's"}
    outcome = execute_task(call, upstream)
    assert outcome.ok, outcome.error
    folder = tmp_path / "results" / "all"
    assert json.loads((folder / "seen.json").read_text()) == upstream["first"]
    assert (folder / "label.txt").read_text() == "it's"
    assert not list(tmp_path.rglob("PWNED"))
