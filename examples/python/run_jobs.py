"""stockade from Python: one job, then several in one sandbox set up once.

Run it: ``python examples/python/run_jobs.py`` (bwrap is used when usable).
"""

from __future__ import annotations

import asyncio

import stockade


async def main() -> None:
    result = await stockade.arun(shell='echo "Hello, $INPUT_NAME"', input={"name": "Ada"})
    print(result.outcome.value, result.outputs["stdout"].strip())

    from stockade.sandbox.registry import describe

    backend = "bwrap" if any(n == "bwrap" and u.usable for n, _, u in describe()) else "local"
    async with stockade.sandboxed(backend) as box:
        for word in ("one", "two"):
            result = await box.run(["sh", "-c", 'echo "$0 as $(id -u)"', word], timeout=10)
            print(backend, result.outcome.value, result.outputs["stdout"].strip())


if __name__ == "__main__":
    print(stockade.run(["echo", "hi"], timeout=10).outputs)
    asyncio.run(main())
