"""IMP inside PyTorch Lightning, beside Lightning's own ModelPruning(use_lottery_ticket_hypothesis=True).

    python examples/lightning_imp.py --out docs/runs/lightning

Both prune the same LightningModule (tests/lit_fixtures.py: a 40-100-100-10 MLP with BatchNorm, SGD with momentum
and weight decay) on MNIST-1D to the same fraction of weights per level, with the same steps per level:
- ours (lottery_ticket.integrations.lightning.find): every level a full Trainer.fit from θ₀ under the mask, the
  random-reinit control beside it, 2 seeds, a run folder `lottery-ticket report` reads;
- Lightning's callback: one fit of (rounds + 1) x the steps, pruning 50 % of what remains at the end of each
  level's epochs and (use_lottery_ticket_hypothesis) resetting the survivors to their original values; its
  defaults prune every weight and bias of every layer, BatchNorm included, by L1 norm per parameter.
Prints one table and writes it to OUT/comparison.md.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/lit_fixtures.py: the module and data both sides train

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.callbacks import ModelPruning  # noqa: E402

from lottery_ticket.integrations.lightning import find  # noqa: E402
from tests.lit_fixtures import MNIST1D, Classifier  # noqa: E402

EPOCHS_PER_LEVEL = 30  # 3,500 training examples / batch 100 = 35 steps an epoch: 1,050 steps a level
RATE, ROUNDS, SEEDS = 0.5, 3, (0, 1)


def lightning_model_pruning(seed: int) -> dict:
    """Lightning's LTH option as its docs show it: one fit, pruning on the epochs that end a level."""
    torch.manual_seed(seed)
    module = Classifier()
    last = EPOCHS_PER_LEVEL * (ROUNDS + 1)
    amount = lambda epoch: RATE if (epoch + 1) % EPOCHS_PER_LEVEL == 0 and epoch + 1 < last else 0.0
    pruning = ModelPruning("l1_unstructured", amount=amount, use_lottery_ticket_hypothesis=True, verbose=0)
    trainer = pl.Trainer(max_epochs=last, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[pruning])
    data = MNIST1D()
    trainer.fit(module, datamodule=data)
    accuracy = trainer.test(module, datamodule=data, verbose=False)[0]["test_acc"]
    pruning.make_pruning_permanent(module)
    weights = [p for n, p in module.named_parameters() if n.endswith("weight") and p.dim() > 1]
    everything = list(module.parameters())
    remaining = lambda ps: 100.0 * sum(int(torch.count_nonzero(p)) for p in ps) / sum(p.numel() for p in ps)
    bn = module.net[1]
    return {"accuracy": accuracy, "weights_remaining_pct": remaining(weights), "all_remaining_pct": remaining(everything),
            "bn_scale_remaining_pct": remaining([bn.weight]), "bias_remaining_pct": remaining(
                [p for n, p in module.named_parameters() if n.endswith("bias")])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/lightning")
    args = parser.parse_args()
    out = Path(args.out)
    summary = find("tests.lit_fixtures:make_module", "tests.lit_fixtures:make_datamodule", str(out / "ours"),
                   budget=f"{35 * EPOCHS_PER_LEVEL}it", metric="test_acc", rounds=ROUNDS, rate=RATE, seeds=SEEDS,
                   controls=("reinit",))
    theirs = [lightning_model_pruning(seed) for seed in SEEDS]
    mean = lambda xs: sum(xs) / len(xs)
    last = summary["levels"][-1]
    lines = [
        f"MNIST-1D, tests/lit_fixtures.py Classifier, {35 * EPOCHS_PER_LEVEL} steps a level, {ROUNDS} levels of "
        f"{RATE:.0%}, seeds {list(SEEDS)} (mean)", "",
        "| method | weight matrices remaining | biases remaining | BatchNorm scale remaining | test accuracy |",
        "| --- | --- | --- | --- | --- |",
        f"| dense (ours, level 0) | 100.0 % | 100.0 % | 100.0 % | {100 * summary['dense_accuracy']['mean']:.2f} % |",
        f"| ours: IMP ticket | {last['weights_remaining_pct']:.1f} % | 100.0 % | 100.0 % | "
        f"{100 * last['ticket']['accuracy']['mean']:.2f} % |",
        f"| ours: random reinit | {last['weights_remaining_pct']:.1f} % | 100.0 % | 100.0 % | "
        f"{100 * last['random_reinit']['accuracy']['mean']:.2f} % |",
        f"| Lightning ModelPruning (LTH) | {mean([t['weights_remaining_pct'] for t in theirs]):.1f} % | "
        f"{mean([t['bias_remaining_pct'] for t in theirs]):.1f} % | {mean([t['bn_scale_remaining_pct'] for t in theirs]):.1f} % | "
        f"{100 * mean([t['accuracy'] for t in theirs]):.2f} % |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    (out / "comparison.md").write_text(text)
    (out / "model_pruning.json").write_text(json.dumps(theirs, indent=1) + "\n")


if __name__ == "__main__":
    main()
