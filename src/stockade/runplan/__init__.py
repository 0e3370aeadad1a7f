"""The compiled run plan: what ``stockade run`` needs of ``stockade.yaml``, as plain data.

:mod:`~stockade.runplan.compile` turns a validated config into JSON data,
:mod:`~stockade.runplan.cache` keeps it under the data directory and reads
it back, and :mod:`~stockade.runplan.model` holds the plain classes the
scheduler, job runner and recorder run from. Nothing here but ``compile``
imports pydantic or yaml: a cached plan starts a run without either.
"""
