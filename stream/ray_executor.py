"""The Ray executor: a batch of clips over a pool of fitter actors, on one machine or a
cluster. Nothing else in meshstream imports Ray.

Layout (DESIGN §7):

- one **clip actor** per clip in flight: decode -> perceive -> track -> window ->
  filter -> write, in order (:func:`meshstream.stream.run.run` with the inline
  executor); it fits each window by calling a fitter actor and waits for the answer,
  so at most one window per clip is in flight (back-pressure) and memory is bounded by
  the number of clip actors, whatever the number and length of the clips;
- a **pool of fitter actors** shared by all clips (``num_gpus`` each where asked), each
  holding an estimator built from the same :class:`~meshstream.stream.pipeline.FitterSpec`.

Faults: the fitter is stateless (a window travels with its tracks' priors), so a fitter
actor that dies is restarted by Ray and its call retried (``max_restarts``,
``max_task_retries``) with the same answer. A clip actor that dies is restarted and its
clip continued from the store's last committed window (the ``--resume`` machinery):
everything is written keyed by frame index and committed window by window, so a replay
is harmless. A clip that fails (a corrupt file) is reported with its one-line reason
while the others go on.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable

from .clip_job import ClipJob, ClipOutcome, one_line, process_clip
from .errors import InputError

log = logging.getLogger(__name__)


class RayExecutor:
    """Runs a batch on Ray: clip actors and a shared pool of fitter actors.

    Args:
        address: A running cluster's address (``"auto"``, ``"HOST:PORT"``, ``"ray://..."``),
            or ``None``: Ray starts on this machine for the batch.
        fitters: Fitter actors in the pool.
        gpus_per_fitter: GPUs each fitter actor asks for (0: CPU).
        clips_in_flight: Clip actors (clips processed at once).
        gpus_per_clip: GPUs each clip actor asks for: its perception runs there
            (``--detector yolo --device cuda``); 0: CPU.
        num_cpus: CPUs a local Ray may schedule (``None``: this machine's, at least one
            per actor).
        fitter_exit_at: Test hook: ``(n, marker path)``: the first fitter actor writes the
            marker file and exits its process at its n-th call (``None``: never), so that
            its restart and retry are exercised and seen.
        clip_exit_at: Test hook: a clip actor exits at this frame of its first clip.
    """

    def __init__(self, *, address: str | None = None, fitters: int = 1, gpus_per_fitter: float = 0.0,
                 clips_in_flight: int = 1, gpus_per_clip: float = 0.0, num_cpus: int | None = None,
                 fitter_exit_at: tuple[int, str] | None = None,
                 clip_exit_at: int | None = None) -> None:
        self.address = address
        self.fitters = fitters
        self.gpus_per_fitter = gpus_per_fitter
        self.clips_in_flight = clips_in_flight
        self.gpus_per_clip = gpus_per_clip
        self.num_cpus = num_cpus
        self.fitter_exit_at = fitter_exit_at
        self.clip_exit_at = clip_exit_at

    def run_batch(self, jobs: list[ClipJob], config, fitter_spec, software_version: str,
                  on_progress: Callable[[int, ClipOutcome | None], None] | None = None) -> list[ClipOutcome]:
        """Processes ``jobs``; returns their outcomes in the jobs' order.

        Args:
            jobs: The clips.
            config: The run's configuration (the same for every clip).
            fitter_spec: What the fitter actors build.
            software_version: Stored in each store.
            on_progress: Called with (frames done since the last call, a finished clip's
                outcome or ``None``), from this thread, about twice a second.
        """
        import ray

        started = not ray.is_initialized()
        if started:
            actors = self.fitters + min(self.clips_in_flight, len(jobs))
            kw = {"address": self.address} if self.address else {
                "num_cpus": self.num_cpus or max(os.cpu_count() or 1, actors), "include_dashboard": False}
            ray.init(**kw, log_to_driver=False, logging_level=logging.WARNING)
        try:
            self._check_gpus(ray)
            return self._run(ray, jobs, config, fitter_spec, software_version, on_progress)
        finally:
            if started:
                ray.shutdown()

    def _check_gpus(self, ray) -> None:
        """Refuses GPUs the cluster does not have: Ray would wait for them for ever."""
        gpus = float(ray.cluster_resources().get("GPU", 0.0))
        for value, flag in ((self.gpus_per_fitter, "--gpus-per-fitter"), (self.gpus_per_clip, "--gpus-per-clip")):
            if value > gpus:
                raise InputError(f"{flag} {value:g}: the Ray cluster has {gpus:g} GPUs (ray.cluster_resources()); "
                                 "ask for fewer, or run on one with GPUs (--address)")

    def _run(self, ray, jobs, config, fitter_spec, software_version, on_progress) -> list[ClipOutcome]:
        # A fitter actor always comes back; a window whose fit keeps killing it fails after 3 tries.
        fitter_cls = ray.remote(num_cpus=1, num_gpus=self.gpus_per_fitter, max_restarts=-1,
                                max_task_retries=3)(_FitterActor)
        clip_cls = ray.remote(num_cpus=1, num_gpus=self.gpus_per_clip, max_restarts=3, max_task_retries=3,
                              max_concurrency=2)(_ClipActor)
        pool = [fitter_cls.remote(fitter_spec, self.fitter_exit_at if i == 0 else None) for i in range(self.fitters)]

        def new_clip_actor(k: int):
            return clip_cls.remote(config, software_version, pool, k, self.clip_exit_at)

        clips = [new_clip_actor(k) for k in range(min(self.clips_in_flight, len(jobs)))]
        outcomes: dict[int, ClipOutcome] = {}
        pending = list(enumerate(jobs))
        running: dict = {}  # ObjectRef -> (job index, clip actor's slot)
        for k in range(len(clips)):
            i, job = pending.pop(0)
            running[clips[k].process.remote(job)] = (i, k)
        seen = [0] * len(clips)  # frames each clip actor had processed at the last look
        try:
            while running:
                done, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
                frames = 0
                for k, ref in enumerate([a.frames_done.remote() for a in clips]):
                    try:
                        total = ray.get(ref, timeout=2)
                    except (ray.exceptions.RayError, TimeoutError):  # restarting: counted next time
                        continue
                    frames += total if total < seen[k] else total - seen[k]  # a restarted actor counts from 0
                    seen[k] = total
                for ref in done:
                    i, k = running.pop(ref)
                    try:
                        outcomes[i] = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # the clip failed beyond its retries
                        outcomes[i] = ClipOutcome(jobs[i].input, "failed", reason=one_line(exc))
                        if isinstance(exc, ray.exceptions.RayActorError):  # out of restarts: a fresh actor
                            clips[k], seen[k] = new_clip_actor(k), 0
                    if on_progress is not None:
                        on_progress(frames, outcomes[i])
                        frames = 0
                    if pending:
                        j, job = pending.pop(0)
                        running[clips[k].process.remote(job)] = (j, k)
                if on_progress is not None and frames:
                    on_progress(frames, None)
        except KeyboardInterrupt:
            for actor in clips:  # each store keeps its committed windows, complete=false
                ray.kill(actor, no_restart=True)
            raise
        return [outcomes[i] for i in range(len(jobs))]


class _FitterActor:
    """A fitter in the pool: an estimator built once, called with each window."""

    def __init__(self, spec, exit_at: tuple[int, str] | None = None) -> None:
        import ray
        import torch

        from .pipeline import build_fitter

        torch.set_num_threads(1)
        self.estimator = build_fitter(spec)
        reborn = ray.get_runtime_context().was_current_actor_reconstructed
        self.exit_at = None if reborn else exit_at
        self.calls = 0

    def fit(self, window, camera, priors):
        self.calls += 1
        if self.exit_at is not None and self.calls == self.exit_at[0]:
            with open(self.exit_at[1], "w") as marker:
                marker.write(f"fitter exited at call {self.calls}\n")
            os._exit(1)  # test hook: the process dies as a crashed GPU worker would
        return self.estimator.fit(window, camera, priors)


class _ClipActor:
    """Processes clips one after another; fits their windows on the shared pool."""

    def __init__(self, config, software_version: str, pool: list, index: int, exit_at: int | None = None) -> None:
        import ray
        import torch

        from .pipeline import build_body

        torch.set_num_threads(1)
        self.config = config
        self.software_version = software_version
        self.pool = pool
        self.turn = index  # round-robin over the pool, each clip actor from its own place
        self.body = build_body(config.estimation)
        self.reborn = ray.get_runtime_context().was_current_actor_reconstructed
        self.exit_at = None if self.reborn else exit_at
        self.frames = 0

    def _fit(self, window, camera, priors):
        import ray

        actor = self.pool[self.turn % len(self.pool)]
        self.turn += 1
        # Arrays from the object store are read-only views; the clip's filters write in place.
        return copy.deepcopy(ray.get(actor.fit.remote(window, camera, priors)))

    def _tick(self) -> None:
        self.frames += 1
        if self.exit_at is not None and self.frames == self.exit_at:
            os._exit(1)  # test hook: the clip actor's process dies mid-clip

    def frames_done(self) -> int:
        """Frames this actor has processed (since it last started)."""
        return self.frames

    def process(self, job: ClipJob) -> ClipOutcome:
        # Restarted after a crash: continue the clip from its last committed window.
        outcome = process_clip(job, self.config, self.software_version, self._fit, body=self.body,
                               on_frame=self._tick, resume=self.reborn)
        outcome.restarts, self.reborn = int(self.reborn), False
        return outcome
