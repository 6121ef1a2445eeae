"""The library API is what the README's "As a library" names: no more, no less."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import importer

README = Path(__file__).resolve().parent.parent / "README.md"


def exported_table() -> dict[str, str]:
    """The README's table of exports: name -> its description cell."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("What the package exports") : text.index("## Every night")]
    rows = re.findall(r"^\| `importer\.(\w+)[^`]*` \| (.*) \|$", section, flags=re.MULTILINE)
    return dict(rows)


def test_the_readme_names_exactly_what_all_exports() -> None:
    assert set(exported_table()) == set(importer.__all__)


def test_every_export_resolves() -> None:
    for name in importer.__all__:
        assert getattr(importer, name) is not None, name
        assert name in dir(importer)


def test_the_fields_the_readme_names_exist() -> None:
    table = exported_table()
    for name in ("SyncOptions", "SyncResult", "LibraryResult"):
        cls = getattr(importer, name)
        members = {f.name for f in dataclasses.fields(cls)} | set(vars(cls))
        named = set(re.findall(r"`(\w+)`", table[name])) - {"c", "python"}
        assert named, name
        assert named <= members, (name, named - members)


def test_the_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    assert version("importer") == importer.__version__


def test_importing_the_package_imports_no_pipeline() -> None:
    # worker processes import importer.workers: the package itself must stay light
    code = "import importer, sys; print(sorted(m for m in sys.modules if m.startswith('importer')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['importer']"
