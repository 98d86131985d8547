"""IMP on torch.distributed: DDP training launched by torchrun, never a home-made launcher.

    torchrun --nproc_per_node=N -m lottery_ticket find --distributed --preset ... --out RUN_DIR

Every rank builds θ₀ from the same seed; rank 0 computes each mask and broadcasts it; DDP keeps the
replicas' weights identical; only rank 0 writes the run folder, and every stage ends at a barrier so
the other ranks read what rank 0 wrote (rewind point, trained weights) from the same files. All of this
is the DDPCollective the IMP engine is handed; the engine itself has no distributed branches.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from .errors import LotteryTicketError
from .imp.collective import Collective
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


class DDPCollective(Collective):
    """The engine's collaborator for a torchrun job: rank 0 writes, every stage ends at a barrier, masks are
    broadcast from rank 0, and each trained stage proves by hashing that the replicas agree."""

    def __init__(self, device: str | None = None):
        self.rank, self.world_size, self.device = init_distributed(device)
        self.is_writer = self.rank == 0

    def barrier(self) -> None:
        if dist.is_initialized():
            dist.barrier()

    def agree(self, mask: PruningMask) -> PruningMask:
        mask = broadcast_mask(mask, self.device if self.device.type == "cuda" else torch.device("cpu"))
        self.barrier()
        return mask

    def check_replicas(self, model, mask: PruningMask) -> dict:
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
        return {"replicas_identical": True}
