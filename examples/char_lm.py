"""A lottery ticket in a causal character-level transformer language model, scored by perplexity.

The text is real and ships offline: the fortune cookies of Debian's `fortunes` package (fortune-mod's data files,
BSD licence; `apt-get install fortunes` puts them in /usr/share/games/fortunes). Every attention and
feed-forward weight matrix is pruned (MultiheadAttention's in_proj included); the token and position embeddings
stay dense, and `find` says so on its first line.

    lottery-ticket find --model examples.char_lm:build --data examples.char_lm:data --metric perplexity \\
        --optimizer adam --lr 2e-3 --warmup 100it --budget 1000it --eval-every 250it \\
        --rate 0.5 --rounds 4 --rewind-iteration 50 --controls reinit --seeds 0,1 --workers 2 --out runs/char-lm

Run from the repository root (or put this folder on PYTHONPATH) so `examples.char_lm` imports.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

TEXT_DIR = Path("/usr/share/games/fortunes")  # Debian's `fortunes` package
CONTEXT = 64  # characters a window holds; the model predicts each next one
# Printable ASCII and the newline; anything else reads as one unknown symbol (index 0).
ALPHABET = "\n" + "".join(chr(c) for c in range(32, 127))
VOCAB = len(ALPHABET) + 1
_INDEX = {ch: i + 1 for i, ch in enumerate(ALPHABET)}


class CharTransformer(nn.Module):
    """Token + position embeddings, pre-norm causal transformer layers, a linear head: [batch, tokens, vocabulary]."""

    def __init__(self, width: int = 64, heads: int = 4, layers: int = 2, context: int = CONTEXT, vocab: int = VOCAB):
        super().__init__()
        self.tokens = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(context, width)
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=4 * width, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(context), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        length = ids.shape[1]
        h = self.tokens(ids) + self.positions(torch.arange(length, device=ids.device))
        h = self.body(h, mask=self.causal[:length, :length], is_causal=True)
        return self.head(self.norm(h))


def build(width: int = 64, heads: int = 4, layers: int = 2) -> nn.Module:
    return CharTransformer(width, heads, layers)


def read_fortunes(text_dir: Path = TEXT_DIR) -> list[str]:
    """Every fortune of every data file (those with a .dat index), in file-name order."""
    files = sorted(p for p in text_dir.glob("*") if p.is_file() and p.with_name(p.name + ".dat").is_file())
    if not files:
        raise FileNotFoundError(f"no fortune files in {text_dir}; install Debian's `fortunes` package "
                                "(apt-get install fortunes)")
    entries = []
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="replace")
        entries += [e.strip("\n") for e in text.split("\n%\n") if e.strip()]
    return entries


def encode(text: str) -> torch.Tensor:
    return torch.tensor([_INDEX.get(ch, 0) for ch in text], dtype=torch.long)


class Windows(Dataset):
    """Non-overlapping windows of CONTEXT + 1 characters: (the first CONTEXT, the next character of each)."""

    def __init__(self, ids: torch.Tensor):
        self.ids = ids
        self.count = (len(ids) - 1) // CONTEXT

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int):
        chunk = self.ids[i * CONTEXT: (i + 1) * CONTEXT + 1]
        return chunk[:-1], chunk[1:]


def splits(text_dir: Path = TEXT_DIR) -> dict[str, torch.Tensor]:
    """Fortune i goes to test when i % 40 == 0, to validation when i % 40 == 1, else to training (2.5/2.5/95 %)."""
    entries = read_fortunes(text_dir)
    parts = {"train": [], "val": [], "test": []}
    for i, entry in enumerate(entries):
        parts["test" if i % 40 == 0 else "val" if i % 40 == 1 else "train"].append(entry)
    return {name: encode("\n\n".join(chunk)) for name, chunk in parts.items()}


def data(batch_size: int = 32) -> dict[str, DataLoader]:
    ids = splits()
    return {"train": DataLoader(Windows(ids["train"]), batch_size=batch_size, shuffle=True, drop_last=True),
            "val": DataLoader(Windows(ids["val"]), batch_size=256),
            "test": DataLoader(Windows(ids["test"]), batch_size=256)}
