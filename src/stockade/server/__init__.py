"""The service face: HTTP API, webhooks, health and metrics (``stockade serve``).

Everything here goes through :class:`~stockade.server.service.Service`,
which uses the engine's client functions and the store's public API; no
route touches the runner or the store's tables. Importing this package
imports FastAPI: only ``stockade serve`` does.
"""
