"""Build hook for the optional C extensions; everything else is in pyproject.toml.

``stockade.sandbox._clonespawn`` spawns jobs straight into their slot cgroup
(``clone3``); see ``stockade.sandbox.clonespawn``. ``stockade.runner._maskscan``
masks every form of every secret in one pass over a chunk of output; see
``stockade.runner.redact``. Both are optional: without a C compiler the build
skips them and stockade uses the portable spawn and chained ``bytes.replace``.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "stockade.sandbox._clonespawn",
            ["src/stockade/sandbox/_clonespawn.c"],
            optional=True,
        ),
        Extension(
            "stockade.runner._maskscan",
            ["src/stockade/runner/_maskscan.c"],
            optional=True,
        ),
    ]
)
