"""What a distributed run injects into the engine; a single process gets the no-op SINGLE_PROCESS.

A distributed implementation (lottery_ticket.distributed.DDPCollective) says which rank writes files,
waits at barriers between stages, hands every rank rank 0's mask, and checks that replicas agree.
"""

from __future__ import annotations

from torch import nn

from ..mask import PruningMask


class Collective:
    is_writer: bool = True
    rank: int = 0
    world_size: int = 1

    def barrier(self) -> None:
        """Wait until every rank got here (stages read what the writer wrote before it)."""

    def agree(self, mask: PruningMask) -> PruningMask:
        """The writer's mask on every rank."""
        return mask

    def check_replicas(self, model: nn.Module, mask: PruningMask) -> dict:
        """Extra record fields proving the ranks ended a stage identical ({} alone)."""
        return {}


SINGLE_PROCESS = Collective()
