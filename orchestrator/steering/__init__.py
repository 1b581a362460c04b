"""Steering campaigns from Python and Jupyter: `connect()`, then a `Run` handle per campaign.

import orchestrator
session = orchestrator.connect()                      # the embedded default, in-process
session = orchestrator.connect(url, token=..., project="vlab/project")   # a server
run = session.submit("campaign.yaml")                 # or a CampaignSpec / builder / dict
run.progress(); df = run.results(); run.extend(points=[...]); run.wait()
"""

from orchestrator.steering.connect import Session, connect
from orchestrator.steering.run import Run

__all__ = ["Run", "Session", "connect"]
