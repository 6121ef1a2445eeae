"""Loaded at the start of every Python process of a power-cut test's run (this folder is on
its ``PYTHONPATH``; ``python -P`` workers load it too): records the run's file operations
when ``IMPORTER_TEST_POWERCUT`` is set. See ``powercut_recorder``."""

import os

if os.environ.get("IMPORTER_TEST_POWERCUT"):
    import powercut_recorder

    powercut_recorder.install()
