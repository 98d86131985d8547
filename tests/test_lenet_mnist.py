"""A test-sized LeNet-300-100 IMP run on the real MNIST files: the ticket keeps dense accuracy at ~3.6 % weights."""

from pathlib import Path

import pytest

from lottery_ticket import LotteryTicketFinder, MagnitudePruner
from lottery_ticket.config import TrainConfig
from lottery_ticket.data import load_dataset
from lottery_ticket.models import LeNet300
from lottery_ticket.training import Trainer

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason=f"MNIST not found at {SHARED}")
def test_lenet300_ticket_at_3_6_percent_keeps_dense_accuracy_on_mnist():
    data = load_dataset("mnist", SHARED)
    trainer = Trainer(TrainConfig(optimizer="adam", lr=1.2e-3, batch_size=60, budget="1500it"), data)
    # 4 rounds at 56 % of the hidden weights per round (0.44^4 = 3.7 %), output layer at half rate, as the paper's
    # protocol but compressed so CI can afford it.
    pruner = MagnitudePruner(global_pruning=False, layer_rates={"fc3.weight": 0.28, "*": 0.56})
    finder = LotteryTicketFinder(LeNet300, {}, "cpu", pruner=pruner)
    model, mask, results = finder.find_winning_ticket(None, trainer.as_train_fn(), trainer.as_eval_fn("test"),
                                                      target_sparsity=0.95, pruning_rounds=4, verbose=False)
    hidden = 1 - (mask.num_remaining - int(mask["fc3.weight"].sum())) / (mask.num_total - mask["fc3.weight"].numel())
    assert 0.96 < hidden < 0.965
    dense, ticket = results["rounds"][0]["accuracy"], results["rounds"][-1]["accuracy"]
    reinit = finder.verify_random_ticket(trainer.as_train_fn(), trainer.as_eval_fn("test"))["accuracy"]
    assert dense > 0.95
    assert ticket >= dense - 0.005, (dense, ticket)
    assert ticket > reinit, (ticket, reinit)
