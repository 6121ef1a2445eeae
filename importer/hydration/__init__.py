"""What ``importer hydrate`` does: cast, crew, genres, artwork and ratings, fetched after
the fast import in small batches by id, for the items whose etag changed (or one show,
now). Its library call is ``importer.hydrate`` (with ``importer.HydrateOptions`` and
``importer.HydrateResult``); this package is named ``hydration`` so that importing it
never replaces that function on the ``importer`` package.

Modules, one job each: ``model`` (the values), ``plex`` / ``jellyfin`` (requests and
answers of each kind), ``kinds`` (one interface over them), ``identity`` (reaching the
database's server, recognised by its id), ``select`` (what to hydrate, from the
database), ``batches`` (requests by id, paced and bounded), ``answers`` (an answer
stored), ``ondemand`` (one show, now), ``database`` (the connection's thread),
``pacing`` (``--rate``), ``estimate`` (a large Jellyfin run's server time), ``result``
(the summary), ``runner`` (the run: lock, servers, signals). The store side is
:mod:`importer.store.metadata`.
"""
