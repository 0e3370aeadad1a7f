"""The engine: workers that claim jobs from the store and run them in slots.

* :mod:`~stockade.engine.worker` — the worker: slots, the claim loop, shutdown.
* :mod:`~stockade.engine.keeper` — leases, heartbeats, cancel requests, recovery.
* :mod:`~stockade.engine.execute` — one claimed job: runner in, record out.
* :mod:`~stockade.engine.jobspec` — what a job stores of its task, and back.
* :mod:`~stockade.engine.client` — what the faces (CLI, server) call.

The engine imports the runner and the store; the runner never imports either.
Import the submodules you need: this package's ``__init__`` stays empty so
that importing one piece does not pull in the rest.
"""
