"""`find --stack auto`: the trainings of a level, across seeds and controls, run as stacked groups (issue 24).

The IMP engine stays as it is, one seed at a time. The runner runs each seed in a thread, and each level's ticket
and controls in threads of their own (IMP's `parallel` hook); their trainings are submitted here instead of run.
A group runs when every thread that could still submit is waiting: which trainings share a group is then a
function of the run's structure, never of timing. A group's trainings of one architecture and start step train
as one StackedTrainer; the others (callbacks such as early-bird or the rewind point's capture) one by one, in the
order of their stage. Because a network's stacked training is bit-identical whatever its companions
(training/stacked.py), a run resumed after a crash, whose groups hold fewer trainings, ends where the
uninterrupted run ends.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn


@dataclass(eq=False)
class Training:
    """One submitted training: the request, then (once `done`) its metrics or the error it raised."""

    key: tuple  # trainings with equal keys may share a stack
    order: tuple  # where it runs within a group: (seed, stage)
    run_alone: Callable[[], dict[str, Any]]  # how to train it by itself
    model: nn.Module  # for a stack: network, mask, data seed, start step
    mask: Any
    data_seed: int
    start_iteration: int
    log_path: Any = None  # where its training log goes (None: not written by this process)
    checkpoint: Any = None  # where its stacked checkpoint is kept (None: none)
    done: bool = False
    result: dict[str, Any] | None = None
    error: BaseException | None = None


@dataclass
class Rendezvous:
    """Collects trainings from threads and runs them in deterministic groups; `train_stack(trainings)` runs one
    stack and returns each training's metrics."""

    train_stack: Callable[[list[Training]], list[dict[str, Any]]]
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _live: int = 0
    _pending: list[Training] = field(default_factory=list)
    _local: threading.local = field(default_factory=threading.local)

    # ---- threads ------------------------------------------------------------------------------------------
    def run_all(self, jobs: list[Callable[[], Any]]) -> list[Any]:
        """Run `jobs` in threads that may submit trainings; their results in order, or the first job's error."""
        parent_live = getattr(self._local, "live", False)
        results: list[Any] = [None] * len(jobs)
        errors: list[BaseException | None] = [None] * len(jobs)
        remaining = [len(jobs)]
        with self._cond:
            # A live parent lends its place to its jobs while it waits for them, and gets it back from the last.
            self._live += len(jobs) - (1 if parent_live else 0)

        def body(index: int) -> None:
            self._local.live = True
            try:
                results[index] = jobs[index]()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                errors[index] = exc
            finally:
                with self._cond:
                    remaining[0] -= 1
                    if not (remaining[0] == 0 and parent_live):
                        self._live -= 1
                    group = self._take_group()
                self._run(group)

        threads = [threading.Thread(target=body, args=(i,), daemon=True, name=f"lottery-ticket-{i}")
                   for i in range(len(jobs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for error in errors:
            if error is not None:
                raise error
        return results

    # ---- trainings ----------------------------------------------------------------------------------------
    def submit(self, training: Training) -> dict[str, Any]:
        if not getattr(self._local, "live", False):  # not one of our threads: nothing to wait for
            self._run([training])
        else:
            with self._cond:
                self._pending.append(training)
                group = self._take_group()
            self._run(group)
            with self._cond:
                while not training.done:
                    self._cond.wait()
        if training.error is not None:
            raise training.error
        return training.result

    def _take_group(self) -> list[Training]:
        """The pending trainings, once every live thread is waiting on one (call with the lock held)."""
        if self._pending and len(self._pending) >= self._live:
            group, self._pending = self._pending, []
            return group
        return []

    def _run(self, group: list[Training]) -> None:
        if not group:
            return
        try:
            stacks: dict[tuple, list[Training]] = {}
            for training in sorted(group, key=lambda t: t.order):
                stacks.setdefault(training.key, []).append(training)
            for key, members in stacks.items():
                if key[0] == "alone":
                    for training in members:
                        _settle([training], lambda t=training: [t.run_alone()])
                else:
                    _settle(members, lambda m=members: self.train_stack(m))
        finally:
            with self._cond:
                for training in group:
                    training.done = True
                self._cond.notify_all()


def _settle(trainings: list[Training], run: Callable[[], list[dict[str, Any]]]) -> None:
    """Each training's metrics from `run`, or the error it raised for every one of them (their threads re-raise)."""
    try:
        for training, metrics in zip(trainings, run()):
            training.result = metrics
    except BaseException as exc:  # noqa: BLE001
        for training in trainings:
            training.error = exc
