"""Faces in the terminal: the live view of ``stockade run`` and its plain and JSON forms."""
