"""A tiny BERT and a tiny GPT-2 of a user's own (random weights from a config: no downloads) on MNIST-1D read as
token sequences (each of the 40 values quantized to one of 32 tokens): real data, generated offline. The Hugging
Face integration's tests train these."""

import numpy as np
import torch
from transformers import BertConfig, BertForSequenceClassification, GPT2Config, GPT2ForSequenceClassification

from lottery_ticket.data import load_dataset

VOCAB = 32


class Tokens(torch.utils.data.Dataset):
    def __init__(self, x, y, edges):
        self.ids = torch.from_numpy(np.digitize(x.numpy(), edges)).long()
        self.labels = y

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def accuracy(prediction):
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def make_data():
    data = load_dataset("mnist1d")
    edges = np.quantile(data.train.x.numpy(), np.linspace(0, 1, VOCAB + 1)[1:-1])  # equal-count bins of train
    return {"train_dataset": Tokens(data.train.x, data.train.y, edges),
            "eval_dataset": Tokens(data.test.x[:500], data.test.y[:500], edges), "compute_metrics": accuracy,
            "training_args": {"learning_rate": 1e-3, "per_device_train_batch_size": 64, "weight_decay": 0.01,
                              "per_device_eval_batch_size": 250}}


def make_bert():
    config = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=40, num_labels=10, type_vocab_size=1)
    return BertForSequenceClassification(config)


def make_gpt2():
    # One id past the data's tokens pads (none of our sequences is padded): GPT-2 classifies at the last token
    # that is not padding, so a data token must never be taken for it.
    config = GPT2Config(vocab_size=VOCAB + 1, n_embd=32, n_layer=2, n_head=2, n_positions=40, num_labels=10,
                        pad_token_id=VOCAB, bos_token_id=VOCAB, eos_token_id=VOCAB)
    return GPT2ForSequenceClassification(config)


def make_data_with_owned_args():
    return {**make_data(), "training_args": {"max_steps": 5}}
