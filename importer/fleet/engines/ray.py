"""Jobs as Ray tasks: ``pip install 'importer[ray]'``.

A local Ray is started for the run (and shut down after it) unless ``address`` names a
cluster to join. Ray runs a task again when its worker process dies (``max_retries``);
``ray.cancel`` reaches a running job as a SIGINT, which the job turns into a clean stop.
A task gets the server's config entry, never a token: Ray keeps task arguments, and may
print them in errors.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from importer.errors import ConfigError, ImporterError, TransportError
from importer.fleet.engines import lost
from importer.fleet.job import JobOutcome, JobSpec, run_job

#: runs of a task whose worker died, before it is reported lost (the fleet may retry)
MAX_RETRIES = 2


class RayEngine:
    name = "ray"

    def __init__(self, *, jobs: int, address: str | None = None) -> None:
        self.jobs = jobs
        self.address = address
        self._ray: Any = None
        self._task: Any = None
        self._started_ray = False
        self._running: dict[Any, JobSpec] = {}  # ObjectRef -> its job

    def start(self) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "--engine ray needs Ray: pip install 'importer[ray]' (or use the local engine)"
            ) from None
        self._ray = ray
        settings: dict[str, Any] = {"logging_level": logging.ERROR, "configure_logging": True}
        if self.address is not None:
            _check_reachable(self.address)
            try:
                ray.init(address=self.address, **settings)
            except Exception as exc:  # Ray's: ConnectionError, RuntimeError, AuthenticationError
                raise _cannot_join(self.address, exc) from None
        else:
            # A Ray of its own ("local": never one that happens to run on this machine), with
            # one logical CPU per job slot: it then runs at most `jobs` tasks here.
            ray.init(address="local", num_cpus=self.jobs, include_dashboard=False, **settings)
            self._started_ray = True
        self._task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(run_job)

    def submit(self, spec: JobSpec) -> None:
        self._running[self._task.remote(spec)] = spec

    def wait(self, timeout: float) -> list[JobOutcome]:
        if not self._running:
            return []
        ray, refs = self._ray, list(self._running)
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:  # and every other that ended meanwhile
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        return [self._outcome(ref, self._running.pop(ref)) for ref in ready]

    def _outcome(self, ref: Any, spec: JobSpec) -> JobOutcome:
        from ray import exceptions

        try:
            outcome: JobOutcome = self._ray.get(ref)
        except exceptions.TaskCancelledError:
            return JobOutcome(
                name=spec.server.name, exit_code=130, outcome="interrupted", message="cancelled"
            )
        except (exceptions.WorkerCrashedError, exceptions.NodeDiedError) as exc:
            return lost(spec, f"{type(exc).__name__} after {MAX_RETRIES} retries")
        except exceptions.RayError as exc:
            return lost(spec, type(exc).__name__)
        return outcome

    def cancel_all(self, *, force: bool = False) -> None:
        for ref in self._running:
            self._ray.cancel(ref, force=force)

    def close(self) -> None:
        if self._ray is None:
            return
        if self._running:
            self.cancel_all(force=True)
            self._running.clear()
        if self._started_ray:
            self._ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail fast when nothing listens at a ``HOST:PORT`` address: Ray itself would keep
    trying to reach it for minutes."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "/" in host:
        return  # "auto", "ray://...": Ray's to resolve
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise TransportError(
            f"cannot join the Ray cluster at {address}: {exc.strerror or exc}; is `ray start --head` "
            "running there?",
            url=address,
        ) from None


def _cannot_join(address: str, exc: BaseException) -> ImporterError:
    """What a failed ``ray.init(address=...)`` means, and what to do."""
    chain: list[str] = []
    while exc is not None and len(chain) < 5:
        chain.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    said = " ".join(chain)
    if "AuthenticationError" in said or "InvalidAuthToken" in said:
        return ConfigError(
            f"the Ray cluster at {address} refused this driver: it wants the cluster's token. "
            "Set RAY_AUTH_MODE=token, with the token in ~/.ray/auth_token (or RAY_AUTH_TOKEN_PATH)"
        )
    return TransportError(
        f"cannot join the Ray cluster at {address}: {chain[0] if chain else 'no answer'}; is "
        "`ray start --head` running there, and is this the same Ray version?",
        url=address,
    )
