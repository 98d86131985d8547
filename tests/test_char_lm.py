"""examples/char_lm.py: the character-level transformer LM of docs/transformer_lm.md, rehearsed at a tiny budget."""

import json
from pathlib import Path

import pytest
import torch

from examples import char_lm
from lottery_ticket import PruningMask
from lottery_ticket.cli import main

FORTUNES = Path("/usr/share/games/fortunes")


def test_fortune_files_split_into_windows_of_next_characters(tmp_path):
    (tmp_path / "wisdom").write_text("A stitch in time.\n%\nSaves nine.\n%\nLook before you leap. Ünïcode\n")
    (tmp_path / "wisdom.dat").write_bytes(b"index")
    (tmp_path / "notes").write_text("no .dat index: not a fortune file\n")
    assert char_lm.read_fortunes(tmp_path) == ["A stitch in time.", "Saves nine.", "Look before you leap. Ünïcode"]
    ids = char_lm.encode("ab\nÜ")
    assert ids.tolist() == [char_lm.ALPHABET.index("a") + 1, char_lm.ALPHABET.index("b") + 1, 1, 0]
    windows = char_lm.Windows(torch.arange(3 * char_lm.CONTEXT + 5))
    x, y = windows[1]
    assert len(windows) == 3 and torch.equal(y, x + 1) and x[0] == char_lm.CONTEXT


def test_the_model_is_causal_and_every_weight_matrix_but_the_embeddings_is_prunable():
    torch.manual_seed(0)
    model = char_lm.build(width=16, heads=2, layers=1).eval()
    ids = torch.randint(0, char_lm.VOCAB, (2, 10))
    changed = ids.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % char_lm.VOCAB
    with torch.no_grad():
        assert torch.allclose(model(ids)[:, :6], model(changed)[:, :6], atol=1e-6)  # no peeking ahead
    names = set(PruningMask(model).names)
    assert "body.layers.0.self_attn.in_proj_weight" in names and "head.weight" in names
    assert not any(n.startswith(("tokens.", "positions.")) for n in names)


@pytest.mark.skipif(not FORTUNES.is_dir(), reason="Debian's fortunes package is not installed (apt-get install fortunes)")
def test_the_published_command_runs_at_a_tiny_budget(tmp_path):
    out = tmp_path / "lm"
    assert main(["find", "--model", "examples.char_lm:build", "--data", "examples.char_lm:data", "--metric",
                 "perplexity", "--optimizer", "adam", "--lr", "2e-3", "--warmup", "2it", "--budget", "4it",
                 "--eval-every", "2it", "--rate", "0.5", "--rounds", "1", "--rewind-iteration", "1",
                 "--controls", "reinit", "--quiet", "--out", str(out)]) == 0
    record = json.loads((out / "seed_0" / "rounds" / "round_01.json").read_text())
    assert record["batch_size"] == 32 and 1 < record["perplexity"] < 2 * char_lm.VOCAB  # from ~100 at init (uniform: 97)
