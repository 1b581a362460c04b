"""The default knowledge graph: a pyoxigraph (RocksDB) store in a folder, with SPARQL.

Each registered item lives in its own named graph, named by the item's IRI. Registering a
batch builds each item's statements directly as pyoxigraph quads (`quads.to_quads`), then:

- items already in the store (re-registered: a campaign's final state, a batch sent again)
  are replaced by one SPARQL update (`DROP SILENT GRAPH` + `INSERT DATA` per item), which
  pyoxigraph applies in one transaction: a reader sees the old statements or the new ones;
- new items (nearly all of them: a task attempt is registered once) are added with
  `Store.bulk_extend` when no other Python thread runs (the registrar's own process),
  otherwise with `Store.extend`. `extend` is one transaction and releases the GIL;
  `bulk_extend` writes the quads' index files (SST) and ingests them, ~2x cheaper, but it
  holds the GIL throughout (0.1-0.5 s per 1000 tasks), which would stall the engine and the
  API if they shared the process. pyoxigraph does not document `bulk_extend` as atomic; in
  0.5 a load below ~1M quads (a batch of 1000 tasks is ~40k) is a single RocksDB ingestion
  of all its files, which is atomic. Should it fail anyway, the batch's new graphs are
  dropped (one transaction; they did not exist before) before the error is raised.

So after a failed call no item is half-registered (unless that drop fails too, say on a
full disk), a re-registered item is replaced atomically, and the outbox sends the batch
again: items that did get in then take the replacing path. A crash in the middle of a
`bulk_extend` may leave its temporary `.sst` files in the folder (not in the store).

(Before, the whole batch was one SPARQL update built from JSON-LD parsed by pyoxigraph:
`register_via_sparql`, kept to compare with; `bench/provenance.py` measures both.)

RocksDB lets one process at a time open the folder for writing (a second one fails at once
with "lock file … Resource temporarily unavailable"; a second handle in the same process
with "lock hold by current process"). So this class never keeps the store open: every
call opens it, does its work and closes it (tens of milliseconds), threads of one process
take turns on a per-folder lock, and other processes are waited for up to `lock_timeout`.
A query that still finds the folder locked reads a read-only snapshot instead.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pyoxigraph

from orchestrator.kg.errors import KnowledgeGraphError, KnowledgeGraphUnavailable, QueryError
from orchestrator.kg.model import Registrable
from orchestrator.kg.quads import to_quads, to_quads_via_jsonld
from orchestrator.kg.vocabulary import CONTEXT
from orchestrator.private_paths import make_private_folder

T = TypeVar("T")
_POLL = 0.02
_GUARD = threading.Lock()
_FOLDER_LOCKS: dict[Path, threading.Lock] = {}


def _folder_lock(path: Path) -> threading.Lock:
    with _GUARD:
        return _FOLDER_LOCKS.setdefault(path, threading.Lock())


def _is_lock_error(exc: OSError) -> bool:
    return "lock" in str(exc).lower()


@dataclass(frozen=True)
class QueryResult:
    """A SELECT's rows (unbound variables are left out of a row), and its variables in
    order. CONSTRUCT and DESCRIBE give rows with `subject`, `predicate`, `object`."""

    variables: list[str]
    rows: list[dict[str, str]]


def _term_text(term: object) -> str:
    if isinstance(term, pyoxigraph.NamedNode | pyoxigraph.Literal):
        return term.value
    if isinstance(term, pyoxigraph.BlankNode):
        return f"_:{term.value}"
    return str(term)


def _materialise(
    result: pyoxigraph.QuerySolutions | pyoxigraph.QueryBoolean | pyoxigraph.QueryTriples,
) -> QueryResult | bool:
    if isinstance(result, pyoxigraph.QueryBoolean):
        return bool(result)
    if isinstance(result, pyoxigraph.QueryTriples):
        names = ["subject", "predicate", "object"]
        rows = [dict(zip(names, map(_term_text, triple), strict=True)) for triple in result]
        return QueryResult(names, rows)
    variables = [variable.value for variable in result.variables]
    rows = []
    for solution in result:
        row = {}
        for name in variables:
            term = solution[name]
            if term is not None:
                row[name] = _term_text(term)
        rows.append(row)
    return QueryResult(variables, rows)


Graph = tuple[pyoxigraph.NamedNode, list[pyoxigraph.Quad]]
"""An item's named graph and all its statements."""


def _graphs(
    items: Sequence[Registrable], build: Callable[[Registrable], list[pyoxigraph.Quad]] = to_quads
) -> list[Graph]:
    """Each item's graph, once per IRI: the item registered last in the batch wins."""
    latest = {item.iri: item for item in items}
    return [(pyoxigraph.NamedNode(iri), build(item)) for iri, item in latest.items()]


def _replacing_update(graphs: Sequence[Graph]) -> str:
    """One SPARQL update that replaces each named graph with the given statements."""
    operations = []
    for graph, quads in graphs:
        triples = [pyoxigraph.Triple(q.subject, q.predicate, q.object) for q in quads]
        body = pyoxigraph.serialize(triples, format=pyoxigraph.RdfFormat.N_TRIPLES) or b""
        operations.append(f"DROP SILENT GRAPH {graph}")
        operations.append(f"INSERT DATA {{ GRAPH {graph} {{\n{body.decode()}}} }}")
    return " ;\n".join(operations)


def _store_graphs(store: pyoxigraph.Store, graphs: Sequence[Graph], bulk: bool) -> None:
    """Replace the graphs already in the store (one transaction), then add the others (see
    the module's docstring)."""
    replaced = [graph for graph in graphs if store.contains_named_graph(graph[0])]
    if replaced:
        store.update(_replacing_update(replaced))
    if len(replaced) == len(graphs):
        return
    known = {graph for graph, _ in replaced}
    fresh = [(graph, quads) for graph, quads in graphs if graph not in known]
    quads = (quad for _, statements in fresh for quad in statements)
    if not bulk:
        store.extend(quads)
        return
    try:
        store.bulk_extend(quads)
    except BaseException:
        with contextlib.suppress(Exception):  # leave no item half-added; the error stands
            store.update(" ;\n".join(f"DROP SILENT GRAPH {graph}" for graph, _ in fresh))
        raise


class EmbeddedKnowledgeGraph:
    """A `KnowledgeGraph` in a local folder (`<data_dir>/kg` by default), queryable with
    SPARQL. Queries see every named graph as the default graph and know the `prov:`,
    `xsd:`, `schema:` and `wf:` prefixes."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lock_timeout: float = 10.0,
        bulk_load: bool | None = None,
    ):
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self.bulk_load = bulk_load
        """Add new items with `bulk_extend` (True) or `extend` (False); None: `bulk_extend`
        when this is the process's only Python thread (see the module's docstring)."""
        self._lock = _folder_lock(self.path.absolute())
        self._closed = False

    def __repr__(self) -> str:
        return f"EmbeddedKnowledgeGraph({str(self.path)!r})"

    # ------------------------------------------------------------------ registering
    def register(self, items: Sequence[Registrable]) -> None:
        """Store the items, replacing what was stored under their IRIs (see the module's
        docstring for what a failure leaves). An invalid item raises ValueError before
        anything is written."""
        if not items:
            return
        graphs = _graphs(items)
        bulk = self.bulk_load
        if bulk is None:
            bulk = threading.active_count() == 1

        def apply(store: pyoxigraph.Store) -> None:
            _store_graphs(store, graphs, bulk)
            store.flush()  # on disk before the caller (the outbox) marks them registered

        self._with_writable(apply, self.lock_timeout)

    def register_via_sparql(self, items: Sequence[Registrable]) -> None:
        """`register` as it was: the statements of `to_jsonld` parsed by pyoxigraph, and the
        whole batch as one SPARQL update (one transaction). The same result, several times
        the CPU; kept to compare with (`bench/provenance.py`, the tests)."""
        if not items:
            return
        update = _replacing_update(_graphs(items, to_quads_via_jsonld))

        def apply(store: pyoxigraph.Store) -> None:
            store.update(update)
            store.flush()

        self._with_writable(apply, self.lock_timeout)

    # --------------------------------------------------------------------- querying
    def execute(self, sparql: str) -> QueryResult | bool:
        """Run a SPARQL query: rows and variables, or a boolean for ASK.
        A query that does not parse raises `QueryError` with the parser's message."""
        if not (self.path / "CURRENT").exists():  # nothing registered yet: an empty store
            return self._query(pyoxigraph.Store(), sparql)
        try:
            return self._with_writable(
                lambda store: self._query(store, sparql), min(self.lock_timeout, 1.0)
            )
        except KnowledgeGraphUnavailable:
            # Another process holds the folder: read a snapshot. RocksDB documents a
            # read-only open beside a writer as undefined; in practice (pyoxigraph 0.5) it
            # sees what was committed when it opened, and our writers hold the lock briefly.
            try:
                return self._query(pyoxigraph.Store.read_only(str(self.path)), sparql)
            except OSError as exc:
                raise KnowledgeGraphUnavailable(f"cannot read {self!r}: {exc}") from exc

    def query(self, sparql: str) -> list[dict[str, str]] | bool:
        """The rows of a SELECT (CONSTRUCT: subject/predicate/object), or ASK's answer."""
        result = self.execute(sparql)
        return result if isinstance(result, bool) else result.rows

    def close(self) -> None:
        self._closed = True

    # ---------------------------------------------------------------------- helpers
    @staticmethod
    def _query(store: pyoxigraph.Store, sparql: str) -> QueryResult | bool:
        try:
            result = store.query(sparql, use_default_graph_as_union=True, prefixes=CONTEXT)
            return _materialise(result)  # before the store is closed
        except SyntaxError as exc:
            raise QueryError(str(exc)) from None

    def _with_writable(self, work: Callable[[pyoxigraph.Store], T], timeout: float) -> T:
        """Open the store read-write (waiting for other holders up to `timeout`), run
        `work`, and close the store again by dropping every reference to it."""
        if self._closed:
            raise KnowledgeGraphError(f"{self!r} is closed")
        if not self._lock.acquire(timeout=max(timeout, 0.001)):
            raise KnowledgeGraphUnavailable(f"{self!r} is busy in this process")
        try:
            store = self._open(time.monotonic() + timeout, timeout)
            failure: BaseException | None = None
            try:
                result = work(store)
            except BaseException as exc:
                failure = exc
            del store  # closes RocksDB and releases its lock file…
            if failure is not None:
                _forget_frames(failure)  # …unless a traceback's frames still hold it
                if isinstance(failure, OSError):
                    raise KnowledgeGraphUnavailable(f"{self!r} failed: {failure}") from failure
                raise failure
            return result
        finally:
            self._lock.release()

    def _open(self, deadline: float, timeout: float) -> pyoxigraph.Store:
        make_private_folder(self.path)
        while True:
            try:
                return pyoxigraph.Store(str(self.path))
            except OSError as exc:
                if not _is_lock_error(exc):
                    raise KnowledgeGraphUnavailable(f"cannot open {self!r}: {exc}") from exc
                if time.monotonic() >= deadline:
                    holder = "this process" if "current process" in str(exc) else "another process"
                    raise KnowledgeGraphUnavailable(
                        f"{self!r} is held by {holder} (waited {timeout:g} s)"
                    ) from None
                time.sleep(_POLL)


def _forget_frames(error: BaseException) -> None:
    """Drop the tracebacks of `error` and its causes: their frames reference the store and
    would keep it open (and locked) for as long as the error is kept. An unexpected error
    keeps its traceback as text, in a note."""
    if not isinstance(error, KnowledgeGraphError):
        error.add_note("".join(traceback.format_tb(error.__traceback__)).rstrip())
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__ or current.__context__
