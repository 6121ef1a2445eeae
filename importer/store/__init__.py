"""The SQLite store: schema, migrations, the writer and the read side.

``connect()`` opens (and creates or upgrades) a database; :class:`Writer` is what the
writer process uses; :mod:`importer.store.queries` answers ``importer status`` and the
decoder's lookups of stored rows. The schema is ``schema.sql`` next to this file, a
documented public contract.
"""

from importer.store.connection import DEFAULT_CACHE_MB, PAGE_SIZE, connect, mapped_errors
from importer.store.links import LinkResult
from importer.store.migrations import SCHEMA_VERSION
from importer.store.rows import PageWrite, WriteCounts
from importer.store.runs import RUN_COUNT_COLUMNS
from importer.store.writer import Writer

__all__ = [
    "DEFAULT_CACHE_MB",
    "PAGE_SIZE",
    "RUN_COUNT_COLUMNS",
    "SCHEMA_VERSION",
    "LinkResult",
    "PageWrite",
    "WriteCounts",
    "Writer",
    "connect",
    "mapped_errors",
]
