"""The performance regression bench: ``python -m bench`` (see bench/README.md).

Every figure is measured side by side in one run, against the same emulated server, and
reported as a ratio to the peers and floors measured in that run: on a noisy shared
machine, noise hits every variant alike, and a ratio holds where a wall time would not.
"""
