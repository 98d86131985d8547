"""A LightningModule and DataModule of a user's own, on MNIST-1D (real data, generated offline): the Lightning
integration's tests, example and docs train these."""

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lottery_ticket.data import load_dataset


class Classifier(pl.LightningModule):
    def __init__(self, hidden: int = 100, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 5e-4):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(40, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_acc", (self(x).argmax(1) == y).float().mean(), reduce_fx="mean")

    def configure_optimizers(self):
        h = self.hparams
        sgd = torch.optim.SGD(self.parameters(), lr=h.lr, momentum=h.momentum, weight_decay=h.weight_decay)
        return {"optimizer": sgd, "lr_scheduler": torch.optim.lr_scheduler.StepLR(sgd, step_size=50, gamma=0.5)}


class MNIST1D(pl.LightningDataModule):
    def __init__(self, batch_size: int = 100):
        super().__init__()
        self.batch_size = batch_size

    def setup(self, stage=None):
        if not hasattr(self, "train"):
            data = load_dataset("mnist1d")
            norm = lambda x: (x - data.mean[0]) / data.std[0]
            self.train = TensorDataset(norm(data.train.x), data.train.y)
            self.test = TensorDataset(norm(data.test.x), data.test.y)

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True, drop_last=True)

    def test_dataloader(self):
        return DataLoader(self.test, batch_size=1000)


def make_module(**kwargs):
    return Classifier(**kwargs)


def make_datamodule():
    return MNIST1D()


def make_plain_module():
    return nn.Linear(40, 10)


class NoTest(Classifier):
    test_step = pl.LightningModule.test_step


def make_untested_module():
    return NoTest()
