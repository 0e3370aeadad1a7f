"""``stockade artifacts JOB [NAME] -o DIR``: list or save a job's artifacts."""

from __future__ import annotations

import json
import os
import posixpath
import shutil
from typing import Any

import click

from stockade.cli.store_opts import open_reader_from, store_command
from stockade.errors import UsageError
from stockade.printable import printable

__all__ = ["artifacts_command", "save_path"]


def save_path(out_dir: str, name: str) -> str:
    """Where artifact ``name`` goes below ``out_dir``; a name that would leave
    it (absolute, ``..``) is refused: the store's record is not trusted either."""
    clean = posixpath.normpath(name)
    if clean.startswith(("/", "../")) or clean in ("..", ".") or "\0" in clean:
        raise UsageError(f"artifact name {name!r} leads out of the output directory; not saved")
    return os.path.join(out_dir, *clean.split("/"))


@click.command("artifacts", short_help="List a job's artifacts, or save them (-o DIR).")
@click.argument("job_ref", metavar="JOB")
@click.argument("name", required=False)
@click.option("-o", "--output", "out_dir", metavar="DIR", help="Save the files into DIR.")
@click.option("--json", "as_json", is_flag=True, help="The list as JSON.")
@store_command
def artifacts_command(job_ref: str, name: str | None, **opts: Any) -> int:
    """List JOB's artifacts (name, size, sha256), or with -o DIR save them all
    (or only NAME) into DIR, keeping their relative paths. A file already
    in DIR is not overwritten. The contents are read from the data directory's
    artifact storage (--data-dir), which the worker that ran the job wrote."""
    from stockade.engine.artifacts import listed, open_artifact, storage_at

    store = open_reader_from(opts)
    try:
        job = store.queries.job(job_ref)
        attempts = store.queries.attempts(job.id)
    finally:
        store.close()
    attempt, items = listed(attempts)
    if name is not None:
        items = [i for i in items if i.get("name") == name]
        if not items:
            raise UsageError(
                f"job {job.id} has no artifact {name!r}; `stockade artifacts {job.id}`"
            )
    out_dir = opts["out_dir"]
    if out_dir is None:
        if opts["as_json"]:
            click.echo(json.dumps({"job": job.id, "attempt": attempt, "artifacts": items}))
            return 0
        for item in items:
            click.echo(printable(f"{item['size']:>12}  {item['sha256'][:12]}  {item['name']}"))
        return 0
    storage = storage_at(opts.get("data_dir"))
    for item in items:
        target = save_path(out_dir, str(item["name"]))
        _, fh = open_artifact(storage, job.id, attempts, str(item["name"]))
        with fh:
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            try:
                out = open(target, "xb")  # noqa: SIM115 (closed below)
            except FileExistsError:
                raise UsageError(f"{target} exists; remove it or choose another -o DIR") from None
            with out:
                shutil.copyfileobj(fh, out, 1 << 20)
        click.echo(printable(target))
    return 0
