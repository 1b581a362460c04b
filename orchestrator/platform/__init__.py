"""The platform seen from the front door: which projects need an instance, bringing one up
(the project's cluster from the provisioner, then its instance from the instance handler),
and stopping idle ones. No FastAPI here; `api/roles.py` wires it into `serve`.

Modules: `front_door` (the reconcile loop), `stages` (its events on campaigns), `tiers`,
`open` (from settings), `settings`, `errors`. This package imports nothing itself, so that
`orchestrator.settings` may import `orchestrator.platform.settings`.
"""
