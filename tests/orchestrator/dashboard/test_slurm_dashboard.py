"""The Campaigns page on the dashboard of the SLURM cluster's scheduler (in this process),
after a campaign whose tasks ran in SLURM jobs, rendered by headless Chromium."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cluster.slurm.compute import SlurmCompute
from orchestrator.dashboard import campaigns_url, register_campaigns_page, unregister_campaigns_page
from orchestrator.service import Service
from orchestrator.spec import parse_document
from tests.conftest import IN_CI
from tests.fixtures.slurm import REPO, cluster_settings
from tests.helpers import spec_doc
from tests.orchestrator.dashboard import chromium

pytestmark = [pytest.mark.slurm, pytest.mark.chromium]


def test_campaigns_page_on_the_slurm_clusters_dashboard(
    slurm_env: dict[str, str], slurm_service: Service, tmp_path: Path
) -> None:
    if not chromium.available():
        if IN_CI:
            pytest.fail("CI=true but chromium is missing: the test command installs `chromium`")
        pytest.skip("no /usr/bin/chromium (apt-get install chromium) to render the page")
    assert register_campaigns_page(slurm_service.settings.database_url, interval=0.5)
    try:
        settings = cluster_settings(slurm_env, dashboard_address="127.0.0.1:0")
        with SlurmCompute(settings) as compute:
            doc = spec_doc(
                "on-slurm-dashboard",
                {"where": {"run": "tests.workloads:slurm_job_id", "foreach": True}},
                x=[1, 2, 3],
            )
            cid = slurm_service.submit(parse_document(doc), import_paths=[str(REPO)])
            assert slurm_service.run(cid, compute) == "succeeded"
            link = compute.dashboard_link
            assert link and link.endswith("/status")
            url = campaigns_url(link)
            assert httpx.get(url, timeout=30).status_code == 200
            expected = ["on-slurm-dashboard", cid, "3/3 done", "where 3/3 (100%)"]
            text = chromium.render(
                url, lambda text: all(e in text for e in expected), profile=tmp_path / "chromium"
            )
            assert not [e for e in expected if e not in text], text[-2000:]
    finally:
        unregister_campaigns_page()
