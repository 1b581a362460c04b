"""A "Campaigns" page on the project's Dask dashboard: an overview per campaign and step,
failures and throughput, read through the service."""

from orchestrator.dashboard.overview import (
    CampaignOverview,
    CampaignsFeed,
    Failure,
    Snapshot,
    StepCounts,
    campaigns_overview,
)
from orchestrator.dashboard.register import (
    campaigns_page_registered,
    campaigns_url,
    register_campaigns_page,
    unregister_campaigns_page,
)

__all__ = [
    "CampaignOverview",
    "CampaignsFeed",
    "Failure",
    "Snapshot",
    "StepCounts",
    "campaigns_overview",
    "campaigns_page_registered",
    "campaigns_url",
    "register_campaigns_page",
    "unregister_campaigns_page",
]
