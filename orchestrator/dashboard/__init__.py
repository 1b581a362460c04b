"""A "Campaigns" page on the project's Dask dashboard: progress per campaign and step,
failures and throughput, read from the state store."""

from orchestrator.dashboard.progress import (
    CampaignProgress,
    CampaignsFeed,
    Failure,
    Snapshot,
    StepProgress,
    campaigns_progress,
)
from orchestrator.dashboard.register import (
    campaigns_page_registered,
    campaigns_url,
    register_campaigns_page,
    unregister_campaigns_page,
)

__all__ = [
    "CampaignProgress",
    "CampaignsFeed",
    "Failure",
    "Snapshot",
    "StepProgress",
    "campaigns_page_registered",
    "campaigns_progress",
    "campaigns_url",
    "register_campaigns_page",
    "unregister_campaigns_page",
]
