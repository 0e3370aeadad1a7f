"""Build hook for the optional C parts; everything else is in pyproject.toml.

``stockade.sandbox._clonespawn`` spawns jobs straight into their slot cgroup
(``clone3``); see ``stockade.sandbox.clonespawn``. ``stockade.runner._maskscan``
masks every form of every secret in one pass over a chunk of output; see
``stockade.runner.redact``. ``stockade/sandbox/_spoolshim`` is not a module but
a small executable, the spool shim of ``stockade worker --reattach`` without a
Python interpreter's start-up; see ``stockade.sandbox.spoolshim``. It is built
by the same ``build_ext`` step, with the same compiler, next to the extensions
(in the source tree for an editable install). All are optional: without a C
compiler the build skips them and stockade uses the portable spawn, chained
``bytes.replace`` and the Python shim.
"""

import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SHIM_PACKAGE = "stockade.sandbox"
SHIM_SOURCE = "src/stockade/sandbox/_spoolshim.c"
SHIM_NAME = "_spoolshim"


class BuildExtAndShim(build_ext):
    """``build_ext`` that also links the spool shim's executable (optional)."""

    def _shim_paths(self) -> tuple[str, str]:
        """Where the shim is built (``build_lib``) and where an in-place build puts it."""
        package_dir = self.get_finalized_command("build_py").get_package_dir(SHIM_PACKAGE)
        built = os.path.join(self.build_lib, *SHIM_PACKAGE.split("."), SHIM_NAME)
        return built, os.path.join(package_dir, SHIM_NAME)

    def build_extensions(self) -> None:
        super().build_extensions()
        built, _ = self._shim_paths()
        try:
            objects = self.compiler.compile([SHIM_SOURCE], output_dir=self.build_temp)
        except Exception as exc:  # CompileError, a missing compiler
            self.warn(f"{SHIM_NAME} not built ({exc}): the Python spool shim is used")
            return
        # Static where the C library allows: no dynamic loading at each start
        # (on the development VM, 0.6 ms of CPU of the shim's 1.7 ms per job).
        for flags in (["-static"], []):
            try:
                self.compiler.link_executable(objects, built, extra_preargs=flags)
                return
            except Exception as exc:  # LinkError: no static C library, say
                failure = exc
        self.warn(f"{SHIM_NAME} not built ({failure}): the Python spool shim is used")

    def copy_extensions_to_source(self) -> None:
        super().copy_extensions_to_source()
        built, inplace = self._shim_paths()
        if os.path.exists(built):
            self.copy_file(built, inplace, level=self.verbose)

    def get_outputs(self) -> list[str]:
        built, _ = self._shim_paths()
        extra = [built] if os.path.exists(built) and not self.inplace else []
        return super().get_outputs() + extra

    def get_output_mapping(self) -> dict[str, str]:
        mapping = super().get_output_mapping()
        built, inplace = self._shim_paths()
        if self.inplace and os.path.exists(built):
            mapping[built] = inplace
        return mapping


setup(
    cmdclass={"build_ext": BuildExtAndShim},
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
    ],
)
