"""The live event stream of a campaign, as text/event-stream: only complete events are
parsed out of it, comments and unknown fields are skipped, and an id counts only when it is a
number. An `event: error` (the server ending the stream because the token expired) is not a
campaign event: it is skipped, and the request that follows the stream's end gets the error.
`_EVENT_SHAPE` lists the fields every event the client yields carries.
"""

from __future__ import annotations

from collections.abc import Iterator

# The stream leaves out empty fields; pages (and so every event the client yields) carry all.
_EVENT_SHAPE = dict.fromkeys(("step", "point", "state", "attempt", "message"))


def _server_sent_events(lines: Iterator[str]) -> Iterator[tuple[int | None, str]]:
    """(id, data) of each complete event of a text/event-stream (comments skipped)."""
    event_id: int | None = None
    data: list[str] = []
    name = ""
    for line in lines:
        if not line:
            if data and name != "error":
                yield event_id, "\n".join(data)
            event_id, data, name = None, [], ""
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value
        elif field == "id" and value.isdigit():
            event_id = int(value)
