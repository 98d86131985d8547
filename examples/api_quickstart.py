"""The public API end to end, as our spec names it. Runs in ~20 s on a CPU: `python examples/api_quickstart.py`."""

import tempfile

from lottery_ticket import LotteryTicketFinder, MagnitudePruner, PruningMask
from lottery_ticket.config import TrainConfig
from lottery_ticket.data import load_dataset
from lottery_ticket.models import MNIST1DMLP
from lottery_ticket.training import Trainer

data = load_dataset("mnist1d")  # generated offline
trainer = Trainer(TrainConfig(optimizer="adam", lr=2e-3, batch_size=100, budget="1500it"), data)
train_fn = trainer.as_train_fn()  # train_fn(model, mask, on_step=None): trains in place with the mask enforced
eval_fn = trainer.as_eval_fn("test")  # eval_fn(model) -> {"accuracy": ..., "loss": ...}

finder = LotteryTicketFinder(MNIST1DMLP, {"num_classes": 10}, "cpu")
model, mask, results = finder.find_winning_ticket(None, train_fn, eval_fn, target_sparsity=0.8, pruning_rounds=3, verbose=True)
random_ticket = finder.verify_random_ticket(train_fn, eval_fn)
print(f"ticket: {results['rounds'][-1]['accuracy']:.3f} at sparsity {mask.sparsity:.3f}; random reinit: {random_ticket['accuracy']:.3f}")
print({name: round(s, 3) for name, s in mask.layer_sparsities.items()})

with tempfile.TemporaryDirectory() as folder:
    finder.save_experiment(f"{folder}/experiment", results)
    loaded = LotteryTicketFinder(MNIST1DMLP, {"num_classes": 10}, "cpu").load_experiment(f"{folder}/experiment")
    assert loaded["rounds"] == results["rounds"]
    mask.save(f"{folder}/mask.safetensors")
    assert PruningMask.load(f"{folder}/mask.safetensors", model) == mask

# The pruner on its own: a new mask, never reviving a pruned weight.
fresh = MNIST1DMLP()
half = MagnitudePruner(global_pruning=True).prune(fresh, PruningMask(fresh), 0.5)
half.apply(fresh)
print(f"one-shot global prune: sparsity {half.sparsity:.3f}")

# 2:4 structured sparsity (NVIDIA sparse tensor cores): at most 2 of every 4 weights along the input dim.
from lottery_ticket import Structured24Pruner, verify_24_pattern  # noqa: E402

pruner = Structured24Pruner()
mask24 = pruner.prune_model(fresh)
mask24.apply(fresh)
print(f"2:4 mask sparsity {mask24.sparsity:.3f}; fc1 obeys 2:4: {verify_24_pattern(fresh.fc1.weight)}")
