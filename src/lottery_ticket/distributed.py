"""IMP on torch.distributed: DDP training launched by torchrun, never a home-made launcher.

    torchrun --nproc_per_node=N -m lottery_ticket find --distributed --preset ... --out RUN_DIR

Every rank builds θ₀ from the same seed; rank 0 computes each mask and broadcasts it; DDP keeps the
replicas' weights identical; only rank 0 writes the run folder, and every stage ends at a barrier so
the other ranks read what rank 0 wrote (rewind point, trained weights) from the same files.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from .errors import LotteryTicketError
from .experiment.runner import ExperimentRunner
from .mask import PruningMask


def init_distributed(device: str | None = None) -> tuple[int, int, torch.device]:
    """Join the process group torchrun describes in the environment; return (rank, world_size, device)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise LotteryTicketError("--distributed needs torchrun's environment; launch with "
                                 "`torchrun --nproc_per_node=N -m lottery_ticket find --distributed ...`")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return rank, world, dev


def broadcast_mask(mask: PruningMask, device: torch.device) -> PruningMask:
    """Rank 0's mask on every rank (bool is sent as uint8: not every backend takes bool)."""
    out = {}
    for name, keep in mask.items():
        t = keep.to(device=device, dtype=torch.uint8)
        dist.broadcast(t, src=0)
        out[name] = t.to("cpu", torch.bool)
    return PruningMask(masks=out)


class DistributedExperimentRunner(ExperimentRunner):
    def __init__(self, config, out_dir, *, device=None, **kwargs):
        rank, world, dev = init_distributed(device)
        self.rank, self.world_size = rank, world
        super().__init__(config, out_dir, device=str(dev), is_writer=(rank == 0), **kwargs)
        if rank != 0:
            self.log = lambda *a, **k: None

    def run(self):
        self._check_budget()
        self._barrier()
        if self.is_writer:
            self._claim_folder()
        self._barrier()
        for seed in self.config.seeds:
            self.run_seed(seed)
        self._barrier()
        from .experiment.results import write_metrics_and_summary

        return write_metrics_and_summary(self.folder, self.config) if self.is_writer else {}

    def _claim_folder(self) -> None:
        if self.is_writer:
            super()._claim_folder()

    def _agree(self, mask: PruningMask) -> PruningMask:
        mask = broadcast_mask(mask, self.device if self.device.type == "cuda" else torch.device("cpu"))
        self._barrier()
        return mask

    def _train_round(self, sf, seed, r, mask, theta0):
        self._barrier()
        row = super()._train_round(sf, seed, r, mask, theta0)
        self._barrier()
        return row

    def _control(self, sf, seed, r, kind, mask, theta0):
        self._barrier()
        row = super()._control(sf, seed, r, kind, mask, theta0)
        self._barrier()
        return row

    def _make_trainer(self, train_config, checkpoint):
        from .training import Trainer

        return Trainer(train_config, self.data, self.device, progress=self.progress and self.is_writer,
                       checkpoint_path=checkpoint, checkpoint_every=self.checkpoint_every,
                       rank=self.rank, world_size=self.world_size)

    def _train_and_evaluate(self, model, mask, checkpoint, seed, stage, on_step=None, callbacks=()):
        result = super()._train_and_evaluate(model, mask, checkpoint, seed, stage, on_step=on_step, callbacks=callbacks)
        result["replicas_identical"] = self._replicas_identical(model, mask)
        return result

    def _replicas_identical(self, model, mask: PruningMask) -> bool:
        """Every rank must end a stage with the same weights and mask; checked by hashing, not assumed."""
        import hashlib

        from .state import snapshot

        h = hashlib.sha256()
        for name, tensor in list(snapshot(model).items()) + [(f"mask/{n}", m) for n, m in mask.items()]:
            h.update(name.encode())
            h.update(tensor.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        digests = [None] * self.world_size
        dist.all_gather_object(digests, h.hexdigest())
        if len(set(digests)) != 1:
            raise LotteryTicketError(f"ranks disagree after training ({len(set(digests))} different weight/mask hashes); "
                                     "this is a bug: please report it with the run folder's config.json")
        return True

    @staticmethod
    def _barrier() -> None:
        if dist.is_initialized():
            dist.barrier()
