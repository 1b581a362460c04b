"""The registered things as pyoxigraph quads: each item's statements in the named graph
that is the item's own IRI.

`to_quads` builds the same statements as `orchestrator.kg.jsonld` describes directly as
pyoxigraph terms (no JSON text, no JSON-LD processing), in about half the CPU of
`to_quads_via_jsonld`, which parses `to_jsonld` with pyoxigraph's JSON-LD parser and defines
what the statements must be (`tests/orchestrator/kg/test_prov.py` checks that both give the
same graph).
Most of what remains is making the `Quad` objects (~3 µs each, ~23 per item).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pyoxigraph

from orchestrator.kg.jsonld import to_jsonld
from orchestrator.kg.model import (
    CampaignProvenance,
    OutputEntity,
    Registrable,
    TaskActivity,
    agent_iri,
)
from orchestrator.kg.vocabulary import CONTEXT, canonical_json, parameter_value


def jsonld_to_quads(document: Mapping[str, Any], graph: str) -> list[pyoxigraph.Quad]:
    """The RDF statements of a JSON-LD document (pyoxigraph's JSON-LD 1.1 parser), in the
    named graph `graph`."""
    parsed = pyoxigraph.parse(json.dumps(document), format=pyoxigraph.RdfFormat.JSON_LD)
    name = pyoxigraph.NamedNode(graph)
    return [pyoxigraph.Quad(q.subject, q.predicate, q.object, name) for q in parsed]


def to_quads_via_jsonld(item: Registrable) -> list[pyoxigraph.Quad]:
    """`to_quads` the slow way: `to_jsonld`, parsed by pyoxigraph (the reference for what
    `to_quads` must give, and the old path that `bench/provenance.py` compares with)."""
    return jsonld_to_quads(to_jsonld(item), item.iri)


# ------------------------------------------------------------------ quads, built directly
# The statements `jsonld_to_quads(to_jsonld(item))` gives, without the JSON-LD round trip.
# Mirrored details of pyoxigraph's JSON-LD to RDF conversion: numbers are canonicalised from
# their JSON text (`_number`), `null` values give no statement, and an `@id` of the form
# `prefix:rest` with a prefix of `CONTEXT` (and `rest` not starting with `//`) is a compact
# IRI that expands (`_node`).

_NamedNode = pyoxigraph.NamedNode
_Literal = pyoxigraph.Literal
_Quad = pyoxigraph.Quad


def _n(prefix: str, name: str) -> pyoxigraph.NamedNode:
    return _NamedNode(CONTEXT[prefix] + name)


_RDF_TYPE = _NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
_XSD_STRING = _n("xsd", "string")
_XSD_INTEGER = _n("xsd", "integer")
_XSD_DOUBLE = _n("xsd", "double")
_XSD_BOOLEAN = _n("xsd", "boolean")
_XSD_DATETIME = _n("xsd", "dateTime")
_TRUE = _Literal("true", datatype=_XSD_BOOLEAN)
_FALSE = _Literal("false", datatype=_XSD_BOOLEAN)
_APPLICATION_JSON = _Literal("application/json")

_P_USED = _n("prov", "used")
_P_STARTED = _n("prov", "startedAtTime")
_P_ENDED = _n("prov", "endedAtTime")
_P_GENERATED_AT = _n("prov", "generatedAtTime")
_P_GENERATED_BY = _n("prov", "wasGeneratedBy")
_P_ATTRIBUTED_TO = _n("prov", "wasAttributedTo")
_P_ASSOCIATED_WITH = _n("prov", "wasAssociatedWith")
_P_QUALIFIED_ASSOCIATION = _n("prov", "qualifiedAssociation")
_P_AGENT = _n("prov", "agent")
_P_HAD_PLAN = _n("prov", "hadPlan")
_P_INFORMED_BY = _n("prov", "wasInformedBy")
_P_HAD_MEMBER = _n("prov", "hadMember")
_P_NAME = _n("schema", "name")
_P_IDENTIFIER = _n("schema", "identifier")
_P_TEXT = _n("schema", "text")
_P_ENCODING_FORMAT = _n("schema", "encodingFormat")
_P_IS_PART_OF = _n("schema", "isPartOf")
_P_VALUE = _n("schema", "value")
_P_CONTENT_URL = _n("schema", "contentUrl")
_P_CONTENT_SIZE = _n("schema", "contentSize")
_P_PROJECT = _n("wf", "project")
_P_STATE = _n("wf", "state")
_P_STEP = _n("wf", "step")
_P_ATTEMPT = _n("wf", "attempt")
_P_POINT = _n("wf", "point")
_P_PARAMETERS = _n("wf", "parameters")
_P_PARAMETER = _n("wf", "parameter")
_P_SLURM_JOB_ID = _n("wf", "slurmJobId")
_P_DIGEST = _n("wf", "digest")
_P_DIGEST_ALGORITHM = _n("wf", "digestAlgorithm")
_P_DIGEST_VALUE = _n("wf", "digestValue")

_CAMPAIGN_TYPES = (_n("prov", "Activity"), _n("wf", "Campaign"))
_AGENT_TYPES = (_n("prov", "Agent"), _n("prov", "Person"))
_CONFIGURATION_TYPES = (_n("prov", "Entity"), _n("prov", "Plan"), _n("wf", "CampaignConfiguration"))
_ASSOCIATION_TYPES = (_n("prov", "Association"),)
_TASK_TYPES = (_n("prov", "Activity"), _n("wf", "Task"))
_PARAMETER_TYPES = (_n("schema", "PropertyValue"),)
_OUTPUT_TYPES = (_n("prov", "Entity"), _n("schema", "MediaObject"), _n("wf", "Output"))
_COLLECTION_TYPES = (_n("prov", "Entity"), _n("prov", "Collection"))


def _node(iri: str) -> pyoxigraph.NamedNode:
    """The node an `@id` (or `{"@id": …}` reference) names, as JSON-LD expands it."""
    prefix, colon, rest = iri.partition(":")
    if colon and prefix in CONTEXT and not rest.startswith("//"):
        iri = CONTEXT[prefix] + rest  # a compact IRI, e.g. "prov:x" (as JSON-LD reads it)
    return _NamedNode(iri)


def _time_literal(value: datetime) -> pyoxigraph.Literal:
    return _Literal(value.isoformat(), datatype=_XSD_DATETIME)


def _number(text: str) -> pyoxigraph.Literal:
    """A JSON number (its text, as `json.dumps` writes it) as JSON-LD turns it into RDF:
    `xsd:integer` when it is a whole number below 10^20 in magnitude (`2.0` and `1e+16`
    too), otherwise an `xsd:double` in canonical form (`1.0E-1`), from the digits of the
    text, not from a rounded float."""
    negative = text.startswith("-")
    mantissa, _, exponent_text = text.lstrip("+-").replace("E", "e").partition("e")
    integer_part, _, decimal_part = mantissa.partition(".")
    exponent = int(exponent_text or "0")
    integer_part = integer_part.lstrip("0")
    decimal_part = decimal_part.rstrip("0")
    if not decimal_part:
        stripped = integer_part.rstrip("0")
        exponent += len(integer_part) - len(stripped)
        integer_part = stripped
    if not integer_part:
        stripped = decimal_part.lstrip("0")
        exponent -= len(decimal_part) - len(stripped)
        decimal_part = stripped
    exponent += len(integer_part)  # the value is now 0.{digits} × 10^exponent
    if not integer_part and not decimal_part:
        return _Literal("0", datatype=_XSD_INTEGER)  # zero, -0.0 included, has no sign
    sign = "-" if negative else ""
    digits = integer_part + decimal_part
    if len(digits) <= exponent < 21:
        return _Literal(sign + digits + "0" * (exponent - len(digits)), datatype=_XSD_INTEGER)
    fraction = digits[1:] or "0"
    return _Literal(f"{sign}{digits[0]}.{fraction}E{exponent - 1}", datatype=_XSD_DOUBLE)


def _integer(value: int) -> pyoxigraph.Literal:
    text = int.__repr__(value)  # the text json.dumps writes (an int subclass too)
    if -(10**20) < value < 10**20:
        return _Literal(text, datatype=_XSD_INTEGER)
    return _number(text)


def _value(value: Any) -> pyoxigraph.Literal | None:
    """A JSON scalar of a document (`bool`, `int`, `float`, `str`; None for `null`) as the
    literal JSON-LD makes of it."""
    if value is None:
        return None
    if value is True:
        return _TRUE
    if value is False:
        return _FALSE
    if isinstance(value, str):
        return _Literal(value)
    if isinstance(value, int):
        return _integer(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no JSON form (JSON-LD numbers are finite)")
        return _number(float.__repr__(value))  # the text json.dumps writes
    raise TypeError(f"not a JSON scalar: {type(value).__name__}")


def campaign_quads(campaign: CampaignProvenance) -> list[pyoxigraph.Quad]:
    """The statements of `campaign_document`."""
    graph = subject = _NamedNode(campaign.iri)
    agent = _node(agent_iri(campaign.submitted_by))
    configuration = _node(campaign.configuration_iri)
    association = _node(campaign.iri + "#association")
    started = _time_literal(campaign.submitted_at)
    quads = [
        *(_Quad(subject, _RDF_TYPE, kind, graph) for kind in _CAMPAIGN_TYPES),
        _Quad(subject, _P_NAME, _Literal(campaign.name), graph),
        _Quad(subject, _P_IDENTIFIER, _Literal(campaign.campaign_id), graph),
        _Quad(subject, _P_PROJECT, _Literal(campaign.project), graph),
        _Quad(subject, _P_STARTED, started, graph),
        _Quad(subject, _P_ASSOCIATED_WITH, agent, graph),
        *(_Quad(agent, _RDF_TYPE, kind, graph) for kind in _AGENT_TYPES),
        _Quad(agent, _P_IDENTIFIER, _Literal(campaign.submitted_by), graph),
        _Quad(subject, _P_QUALIFIED_ASSOCIATION, association, graph),
        *(_Quad(association, _RDF_TYPE, kind, graph) for kind in _ASSOCIATION_TYPES),
        _Quad(association, _P_AGENT, agent, graph),
        _Quad(association, _P_HAD_PLAN, configuration, graph),
        _Quad(subject, _P_USED, configuration, graph),
        *(_Quad(configuration, _RDF_TYPE, kind, graph) for kind in _CONFIGURATION_TYPES),
        _Quad(configuration, _P_NAME, _Literal(f"{campaign.name} configuration"), graph),
        _Quad(configuration, _P_ENCODING_FORMAT, _APPLICATION_JSON, graph),
        _Quad(configuration, _P_TEXT, _Literal(canonical_json(dict(campaign.spec))), graph),
        _Quad(configuration, _P_ATTRIBUTED_TO, agent, graph),
        _Quad(configuration, _P_GENERATED_AT, started, graph),
    ]
    if campaign.state is not None:
        quads.append(_Quad(subject, _P_STATE, _Literal(campaign.state), graph))
    if campaign.ended_at is not None:
        quads.append(_Quad(subject, _P_ENDED, _time_literal(campaign.ended_at), graph))
    return quads


def task_quads(task: TaskActivity) -> list[pyoxigraph.Quad]:
    """The statements of `task_document`."""
    ref = task.ref
    iri = task.iri
    graph = subject = _NamedNode(iri)
    campaign = _node(ref.campaign_iri)
    quads = [
        *(_Quad(subject, _RDF_TYPE, kind, graph) for kind in _TASK_TYPES),
        _Quad(subject, _P_STEP, _Literal(ref.step), graph),
        _Quad(subject, _P_ATTEMPT, _integer(ref.attempt), graph),
        _Quad(subject, _P_STATE, _Literal(task.state), graph),
        _Quad(subject, _P_PARAMETERS, _Literal(canonical_json(dict(task.parameters))), graph),
        _Quad(subject, _P_IS_PART_OF, campaign, graph),
        _Quad(subject, _P_INFORMED_BY, campaign, graph),
        _Quad(subject, _P_STARTED, _time_literal(task.started_at), graph),
        _Quad(subject, _P_USED, _node(ref.campaign_iri + "/configuration"), graph),
        *(_Quad(subject, _P_USED, _node(used), graph) for used in task.used),
    ]
    if ref.point is not None:
        quads.append(_Quad(subject, _P_POINT, _integer(ref.point), graph))
    for name, value in sorted(task.parameters.items()):
        parameter = _node(f"{iri}#parameter-{quote(name, safe='')}")
        quads.append(_Quad(subject, _P_PARAMETER, parameter, graph))
        quads.extend(_Quad(parameter, _RDF_TYPE, kind, graph) for kind in _PARAMETER_TYPES)
        quads.append(_Quad(parameter, _P_NAME, _Literal(name), graph))
        literal = _value(parameter_value(value))
        if literal is not None:
            quads.append(_Quad(parameter, _P_VALUE, literal, graph))
    if task.ended_at is not None:
        quads.append(_Quad(subject, _P_ENDED, _time_literal(task.ended_at), graph))
    if task.slurm_job_id is not None:
        quads.append(_Quad(subject, _P_SLURM_JOB_ID, _Literal(task.slurm_job_id), graph))
    if task.succeeded:
        quads.extend(outputs_collection_quads(task, subject, graph))
    return quads


def outputs_collection_quads(
    task: TaskActivity, activity: pyoxigraph.NamedNode, graph: pyoxigraph.NamedNode
) -> list[pyoxigraph.Quad]:
    """The statements of `outputs_collection`."""
    ref = task.ref
    collection = _node(ref.outputs_iri)
    quads = [
        *(_Quad(collection, _RDF_TYPE, kind, graph) for kind in _COLLECTION_TYPES),
        _Quad(collection, _P_GENERATED_BY, activity, graph),
        *(_Quad(collection, _P_HAD_MEMBER, _node(iri), graph) for iri in task.output_iris),
    ]
    if ref.point is not None:
        step = _node(ref.step_outputs_iri)
        quads.extend(_Quad(step, _RDF_TYPE, kind, graph) for kind in _COLLECTION_TYPES)
        quads.append(_Quad(step, _P_HAD_MEMBER, collection, graph))
    return quads


def output_quads(output: OutputEntity) -> list[pyoxigraph.Quad]:
    """The statements of `output_document`."""
    graph = subject = _NamedNode(output.iri)
    algorithm, _, value = output.digest.partition(":")
    quads = [
        *(_Quad(subject, _RDF_TYPE, kind, graph) for kind in _OUTPUT_TYPES),
        _Quad(subject, _P_NAME, _Literal(output.relpath.strip("/")), graph),
        _Quad(subject, _P_CONTENT_URL, _node(output.location), graph),
        _Quad(subject, _P_CONTENT_SIZE, _integer(output.size), graph),
        _Quad(subject, _P_ENCODING_FORMAT, _Literal(output.media_type), graph),
        _Quad(subject, _P_DIGEST, _Literal(output.digest), graph),
        _Quad(subject, _P_DIGEST_ALGORITHM, _Literal(algorithm), graph),
        _Quad(subject, _P_DIGEST_VALUE, _Literal(value), graph),
        _Quad(subject, _P_GENERATED_BY, _node(output.generated_by.iri), graph),
        _Quad(subject, _P_IS_PART_OF, _node(output.generated_by.campaign_iri), graph),
    ]
    if output.generated_at is not None:
        quads.append(_Quad(subject, _P_GENERATED_AT, _time_literal(output.generated_at), graph))
    return quads


def to_quads(item: Registrable) -> list[pyoxigraph.Quad]:
    """The item's statements, in the named graph that is the item's own IRI: the graph
    `to_quads_via_jsonld` gives (pyoxigraph parsing `to_jsonld`), built directly."""
    if isinstance(item, TaskActivity):
        return task_quads(item)
    if isinstance(item, OutputEntity):
        return output_quads(item)
    if isinstance(item, CampaignProvenance):
        return campaign_quads(item)
    raise TypeError(f"cannot register a {type(item).__name__}")
