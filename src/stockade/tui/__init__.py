"""The full-screen terminal view of a pipeline run (``stockade tui``).

Textual is imported only by :mod:`stockade.tui.app`, which the command
imports when it runs; :mod:`stockade.tui.model` is plain data.
"""
