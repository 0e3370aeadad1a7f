"""Pipelines: planning and running a graph of steps (see docs/pipelines.md).

Importing this package imports nothing else, so the spec layer can use
:mod:`stockade.pipeline.expr` to validate expressions cheaply.
"""
