"""A synchronous HTTP client of the REST API (DESIGN.md: REST API), for notebooks and the CLI.

client = Client("http://127.0.0.1:8000", token, "vlab/project")   # or Client.from_settings()
status = client.wait(client.submit("campaign.yaml")["id"], progress=True)

Every non-2xx answer becomes a `ClientError` built from its problem+json body; a server that
cannot be reached becomes a `ClientError` naming the URL. The token is sent, never shown.

The package re-exports its public names from small private modules: `_client` (the
`Client`, its retries and paging), `errors` (`ClientError`, `WaitTimeout`), `_stream` (the
server-sent events of a followed campaign), `_progress` (`describe` and the progress lines
of `wait`) and `_urls` (what goes into a URL or a message about one).
"""

from orchestrator.client._client import Client
from orchestrator.client._progress import describe
from orchestrator.client.errors import ClientError, WaitTimeout

__all__ = ["Client", "ClientError", "WaitTimeout", "describe"]
