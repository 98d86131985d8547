"""IMP inside the frameworks people train with: each network of a level is one fit of the framework's own trainer.

- `lightning`: your LightningModule factory and LightningDataModule factory, `Trainer.fit` per training
  (`pip install "lottery-ticket[lightning]"`).

The engine (imp/), the run folder and every command that reads one (`report`, `compare`, `resume`) are the same
as for `find`: a framework only changes who trains and evaluates a network. Each integration is imported only
when a run names it, so the frameworks stay optional extras.
"""
