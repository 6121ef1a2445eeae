"""Builds the optional C extension ``importer._speedups`` from ``native/``.

Where no C compiler is available the install still succeeds and the package uses its
pure-Python twin (``importer/_purepy.py``); set ``IMPORTER_REQUIRE_EXTENSION=1`` (CI does)
to make a failed build an error instead. ``IMPORTER_SANITIZE=1`` builds with ASan/UBSan.
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

STRICT = os.environ.get("IMPORTER_REQUIRE_EXTENSION") == "1" or os.environ.get("CI") == "true"
SANITIZE = os.environ.get("IMPORTER_SANITIZE") == "1"

compile_args = ["-std=c11", "-Wall", "-Wextra", "-Wno-missing-field-initializers"]
link_args = []
if STRICT:
    compile_args.append("-Werror")
if SANITIZE:
    compile_args += ["-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
    link_args += ["-fsanitize=address,undefined"]


class OptionalBuildExt(build_ext):
    """Build the extension, or fall back to the pure-Python twin unless told not to."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler, no headers: the twin does the same work
            self._fallback(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._fallback(exc)

    def _fallback(self, exc):
        if STRICT:
            raise exc
        sys.stderr.write(
            f"importer: the C extension could not be built ({exc}); "
            "installing with the pure-Python twin, which gives identical results, only slower.\n"
        )


extension = Extension(
    "importer._speedups",
    sources=["native/speedups.c"],
    extra_compile_args=[] if sys.platform == "win32" else compile_args,
    extra_link_args=[] if sys.platform == "win32" else link_args,
)

setup(ext_modules=[extension], cmdclass={"build_ext": OptionalBuildExt})
