"""Many servers: a TOML config of servers, a fleet run over an engine (a local process
pool by default, Ray as an option), and fleet-wide queries through DuckDB.

One server is one job: its own SQLite file, lock and cursor. Jobs are at-least-once
(an engine may run one again after a worker dies); the lock and idempotent upserts make
the result effectively-once.
"""
