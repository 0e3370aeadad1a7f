"""Build hook for the one optional C extension; everything else is in pyproject.toml.

``stockade.sandbox._clonespawn`` spawns jobs straight into their slot cgroup
(``clone3``); see ``stockade.sandbox.clonespawn``. It is optional: without a
C compiler the build skips it and stockade uses the portable spawn.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "stockade.sandbox._clonespawn",
            ["src/stockade/sandbox/_clonespawn.c"],
            optional=True,
        )
    ]
)
