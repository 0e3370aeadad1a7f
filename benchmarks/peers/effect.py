"""What every peer's job does: run ``/bin/true``, then leave its record.

A record is the job's index in ``RECORD`` bytes, appended with ``O_APPEND``
(one ``write``, so records never interleave): the file's size counts the
jobs that ran, its content says which. Imported by the workers, so it
imports nothing heavy.
"""

from __future__ import annotations

import os
import subprocess

#: The prefix of the peers' Redis keys where they allow one (RQ does not).
PREFIX = "stockade-bench:"
#: Bytes per record: nine digits and a newline.
RECORD = 10


def run_job(records: str, index: int) -> int:
    """The job: ``/bin/true`` as a subprocess, then one record."""
    code = subprocess.run(["/bin/true"], check=True).returncode
    fd = os.open(records, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"%09d\n" % index)
    finally:
        os.close(fd)
    return code
