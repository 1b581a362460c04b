"""The registered things as W3C PROV-O JSON-LD documents (what Nexus is sent, and what
`orchestrator.kg.quads` must agree with).

Each item becomes one JSON-LD document whose root `@id` is the item's IRI and whose context
is inline (`CONTEXT`); the nodes it embeds (the campaign's configuration and user, a task's
parameters and the collection of its outputs) have IRIs derived from it, so the document is
the complete, replaceable description of that one item. A succeeded `foreach` attempt's
document also says that its outputs' collection is a member of its step's (`@reverse`), so
that statement goes and comes with the attempt's registration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from orchestrator.kg.model import (
    CampaignProvenance,
    OutputEntity,
    Registrable,
    TaskActivity,
    agent_iri,
)
from orchestrator.kg.vocabulary import CONTEXT, canonical_json, parameter_value

COLLECTION_TYPES = ("prov:Entity", "prov:Collection")
"""The types of an attempt's outputs collection, and of a step's."""


def _time(value: datetime) -> dict[str, str]:
    return {"@value": value.isoformat(), "@type": "xsd:dateTime"}


def _ref(iri: str) -> dict[str, str]:
    return {"@id": iri}


def campaign_document(campaign: CampaignProvenance) -> dict[str, Any]:
    """The campaign as a `prov:Activity` associated with its user, following its spec (a
    `prov:Plan` entity that the campaign and each of its tasks `prov:used`)."""
    agent_id = agent_iri(campaign.submitted_by)
    agent = {
        "@id": agent_id,
        "@type": ["prov:Agent", "prov:Person"],
        "schema:identifier": campaign.submitted_by,
    }
    configuration = {
        "@id": campaign.configuration_iri,
        "@type": ["prov:Entity", "prov:Plan", "wf:CampaignConfiguration"],
        "schema:name": f"{campaign.name} configuration",
        "schema:encodingFormat": "application/json",
        "schema:text": canonical_json(dict(campaign.spec)),
        "prov:wasAttributedTo": _ref(agent_id),
        "prov:generatedAtTime": _time(campaign.submitted_at),
    }
    document: dict[str, Any] = {
        "@context": CONTEXT,
        "@id": campaign.iri,
        "@type": ["prov:Activity", "wf:Campaign"],
        "schema:name": campaign.name,
        "schema:identifier": campaign.campaign_id,
        "wf:project": campaign.project,
        "prov:startedAtTime": _time(campaign.submitted_at),
        "prov:wasAssociatedWith": agent,
        "prov:qualifiedAssociation": {
            "@id": campaign.iri + "#association",
            "@type": "prov:Association",
            "prov:agent": _ref(agent_id),
            "prov:hadPlan": _ref(campaign.configuration_iri),
        },
        "prov:used": configuration,
    }
    if campaign.state is not None:
        document["wf:state"] = campaign.state
    if campaign.ended_at is not None:
        document["prov:endedAtTime"] = _time(campaign.ended_at)
    return document


def outputs_collection(task: TaskActivity) -> dict[str, Any]:
    """What a succeeded attempt handed downstream: a `prov:Collection` of its outputs,
    `prov:wasGeneratedBy` it; for a `foreach` attempt, a member of its step's collection."""
    ref = task.ref
    collection: dict[str, Any] = {"@id": ref.outputs_iri, "@type": list(COLLECTION_TYPES)}
    if task.output_iris:
        collection["prov:hadMember"] = [_ref(iri) for iri in task.output_iris]
    if ref.point is not None:
        step = {"@id": ref.step_outputs_iri, "@type": list(COLLECTION_TYPES)}
        collection["@reverse"] = {"prov:hadMember": step}
    return collection


def task_document(task: TaskActivity) -> dict[str, Any]:
    """One attempt of a task as a `prov:Activity`, part of (and informed by) its campaign;
    a succeeded one with the collection of its outputs (`outputs_collection`)."""
    ref = task.ref
    parameters = [
        {
            "@id": f"{task.iri}#parameter-{quote(name, safe='')}",
            "@type": "schema:PropertyValue",
            "schema:name": name,
            "schema:value": parameter_value(value),
        }
        for name, value in sorted(task.parameters.items())
    ]
    used = [_ref(ref.campaign_iri + "/configuration"), *(_ref(iri) for iri in task.used)]
    document: dict[str, Any] = {
        "@context": CONTEXT,
        "@id": task.iri,
        "@type": ["prov:Activity", "wf:Task"],
        "wf:step": ref.step,
        "wf:attempt": ref.attempt,
        "wf:state": task.state,
        "wf:parameters": canonical_json(dict(task.parameters)),
        "schema:isPartOf": _ref(ref.campaign_iri),
        "prov:wasInformedBy": _ref(ref.campaign_iri),
        "prov:startedAtTime": _time(task.started_at),
        "prov:used": used,
    }
    if ref.point is not None:
        document["wf:point"] = ref.point
    if parameters:
        document["wf:parameter"] = parameters
    if task.ended_at is not None:
        document["prov:endedAtTime"] = _time(task.ended_at)
    if task.slurm_job_id is not None:
        document["wf:slurmJobId"] = task.slurm_job_id
    if task.succeeded:
        document["@reverse"] = {"prov:wasGeneratedBy": outputs_collection(task)}
    return document


def output_document(output: OutputEntity) -> dict[str, Any]:
    """A produced file as a `prov:Entity` generated by its task's attempt."""
    algorithm, _, value = output.digest.partition(":")
    document: dict[str, Any] = {
        "@context": CONTEXT,
        "@id": output.iri,
        "@type": ["prov:Entity", "schema:MediaObject", "wf:Output"],
        "schema:name": output.relpath.strip("/"),
        "schema:contentUrl": _ref(output.location),
        "schema:contentSize": output.size,
        "schema:encodingFormat": output.media_type,
        "wf:digest": output.digest,
        "wf:digestAlgorithm": algorithm,
        "wf:digestValue": value,
        "prov:wasGeneratedBy": _ref(output.generated_by.iri),
        "schema:isPartOf": _ref(output.generated_by.campaign_iri),
    }
    if output.generated_at is not None:
        document["prov:generatedAtTime"] = _time(output.generated_at)
    return document


def to_jsonld(item: Registrable) -> dict[str, Any]:
    """The item's PROV-O JSON-LD document (root `@id` = the item's IRI)."""
    if isinstance(item, CampaignProvenance):
        return campaign_document(item)
    if isinstance(item, TaskActivity):
        return task_document(item)
    if isinstance(item, OutputEntity):
        return output_document(item)
    raise TypeError(f"cannot register a {type(item).__name__}")
