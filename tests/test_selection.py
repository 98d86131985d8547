"""Honest selection (issue 26, item 4): every weight matrix is prunable by default, embeddings and norms opt in,
and the share of the model the percentages speak of is stated on find's first line and in every report."""

import json

import pytest
import torch
from torch import nn

from lottery_ticket import PruningMask
from lottery_ticket.cli import main
from lottery_ticket.errors import LotteryTicketError
from lottery_ticket.mask import selection_line, selection_stats


class TinyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(16, 8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 4)


def test_the_stats_count_every_parameter_once_and_list_the_matrices_left_dense():
    torch.manual_seed(0)
    model = TinyTransformer()
    mask = PruningMask(model)
    assert mask.names == ["attn.in_proj_weight", "attn.out_proj.weight", "head.weight"]
    stats = selection_stats(model, mask.names)
    assert stats == {"masked_weights": 24 * 8 + 8 * 8 + 4 * 8,
                     "all_weights": sum(p.numel() for p in model.parameters()),
                     "dense_matrices": {"embed.weight": [16, 8]}}
    assert selection_line(stats) == ('masked: 61.5 % of the model\'s 468 weights ("weights remaining" is of these); '
                                      "weight matrices never pruned: embed.weight [16, 8]")


def test_also_adds_types_and_patterns_to_the_default_and_refuses_what_names_nothing():
    model = TinyTransformer()
    assert PruningMask(model, also=["type:Embedding"]).names == ["embed.weight", "attn.in_proj_weight",
                                                                 "attn.out_proj.weight", "head.weight"]
    assert "norm.weight" in PruningMask(model, also=["norm.*"]).names
    with pytest.raises(LotteryTicketError, match="include 'type:GRU': the model has no GRU with weights"):
        PruningMask(model, also=["type:GRU"])
    with pytest.raises(LotteryTicketError, match="include 'decoder.*' matches no parameter"):
        PruningMask(model, also=["decoder.*"])


TINY = ["--model", "examples.mnist1d_attention:build", "--data", "examples.mnist1d_attention:data",
        "--budget", "10it", "--eval-every", "10it", "--rounds", "1", "--quiet"]


def test_find_states_the_share_first_and_the_report_and_summary_keep_it(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["find", *TINY, "--out", str(run)]) == 0
    out = capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    line = selection_line(summary["selection"])
    assert "weight matrices never pruned: none" in line  # attention's in_proj_weight is in the mask now
    assert main(["report", str(run)]) == 0
    assert line in capsys.readouterr().out and line in out


def test_include_type_embedding_prunes_a_gpt2_embedding_and_a_typo_writes_nothing(tmp_path, capsys):
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    args = ["find", "--framework", "huggingface", "--model", "tests.hf_fixtures:make_gpt2", "--dataset",
            "tests.hf_fixtures:make_data", "--metric", "eval_accuracy", "--budget", "4it", "--rounds", "1", "--quiet"]
    assert main([*args, "--include", "type:Embeding", "--out", str(tmp_path / "typo")]) == 2
    assert "the model has no Embeding with weights" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()
    assert main([*args, "--include", "type:Embedding", "--out", str(tmp_path / "run")]) == 0
    dense = json.loads((tmp_path / "run" / "seed_0" / "rounds" / "round_00.json").read_text())
    assert dense["selection"]["dense_matrices"] == {}
    assert {"transformer.wte.weight", "transformer.wpe.weight"} <= set(dense["layer_sparsities"])


def test_exclude_type_leaves_a_module_class_out_of_the_mask_and_reports_it_dense(tmp_path, capsys):
    model = TinyTransformer()
    assert PruningMask(model, exclude=["type:MultiheadAttention"]).names == ["head.weight"]
    with pytest.raises(LotteryTicketError, match="exclude 'type:GRU': the model has no GRU with weights"):
        PruningMask(model, exclude=["type:GRU"])
    run = tmp_path / "run"
    assert main(["find", *TINY, "--exclude", "type:MultiheadAttention", "--out", str(run)]) == 0
    dense = json.loads((run / "seed_0" / "rounds" / "round_00.json").read_text())
    assert set(dense["selection"]["dense_matrices"]) == {"attention.in_proj_weight", "attention.out_proj.weight"}
    assert set(dense["layer_sparsities"]) == {"conv.weight", "head.weight"}
    capsys.readouterr()
    assert main(["find", *TINY, "--exclude", "type:LSTM", "--out", str(tmp_path / "bad")]) == 2
    assert "the model has no LSTM with weights" in capsys.readouterr().err and not (tmp_path / "bad").exists()


# Pinned by the mutation run of 2026-12-04 (docs/bench/mutation_core.txt): each test below fails under a mutant
# that survived it. ------------------------------------------------------------------------------------------------
class Scale(nn.Module):
    """A module of the user's: a `weight` and a `bias` of its own, a Linear inside."""

    def __init__(self, inner: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4))
        self.bias = nn.Parameter(torch.zeros(4))
        self.lin = nn.Linear(4, 4) if inner else None


class Conv1D(nn.Module):  # the name of transformers' class, but the user's own: not a transposed Linear
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4, 4))


def test_selection_line_counts_the_share_and_lists_six_dense_matrices_then_how_many_more():
    def line(n_dense, masked=3, total=4):
        dense = {f"m{i}": [2, 2] for i in range(n_dense)}
        return selection_line({"masked_weights": masked, "all_weights": total, "dense_matrices": dense})

    assert line(0, masked=1, total=1).startswith("masked: 100.0 % of the model's 1 weights")
    assert line(6).endswith("never pruned: m0 [2, 2], m1 [2, 2], m2 [2, 2], m3 [2, 2], m4 [2, 2], m5 [2, 2]")
    assert line(7).endswith("m4 [2, 2], m5 [2, 2] and 1 more")
    assert line(9).endswith("m5 [2, 2] and 3 more")


def test_type_exclusion_takes_a_modules_own_weight_and_adds_to_name_exclusions():
    from lottery_ticket.mask import select_names

    model = nn.Sequential(nn.Linear(4, 4), Scale(), nn.Linear(4, 4))
    names = select_names(model, ["*weight"], ["type:Scale"], None)
    assert names == ["0.weight", "1.lin.weight", "2.weight"]  # Scale's own weight out, not its bias, not its Linear
    names = select_names(model, ["*weight"], ["2.weight", "type:Scale"], None)
    assert names == ["0.weight", "1.lin.weight"]


def test_also_adds_every_item_and_a_root_module_of_the_named_type():
    from lottery_ticket.mask import select_names

    model = Scale()  # the model itself is the Scale: its weight has no prefix
    assert select_names(model, None, [], None, also=["type:Scale"]) == ["weight", "lin.weight"]
    assert select_names(model, None, [], None, also=["type:Scale", "bias"]) == ["weight", "bias", "lin.weight"]


def test_a_type_or_pattern_that_matches_nothing_is_one_line_naming_what_there_is():
    from lottery_ticket.mask import select_names

    kinds = [type(f"Kind{i:02d}", (nn.Module,), {}) for i in range(13)]
    model = nn.Sequential(*[k() for k in kinds], nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2))
    with pytest.raises(LotteryTicketError) as info:
        select_names(model, None, ["type:Embedding"], None)
    listed = str(info.value).split("its module types are ")[1]
    assert listed == ", ".join(sorted(["Linear", "Sequential"] + [f"Kind{i:02d}" for i in range(13)])[:12])
    with pytest.raises(LotteryTicketError) as info:
        select_names(model, None, [], None, also=["nothing.*"])
    assert str(info.value).endswith("names look like ['13.weight', '13.bias', '14.weight', '14.bias']")


def test_a_user_class_named_conv1d_is_not_taken_for_transformers_conv1d():
    model = nn.Sequential(nn.Linear(4, 4), Conv1D())
    assert PruningMask(model).names == ["0.weight"]


def test_a_tied_weight_is_counted_once_in_the_share():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10, bias=False))
    model[1].weight = model[0].weight  # the output layer reads the embedding's matrix
    stats = selection_stats(model, PruningMask(model).names)
    assert stats["all_weights"] == 40 and stats["masked_weights"] == 40 and stats["dense_matrices"] == {}


def test_a_type_whose_modules_hold_no_weight_is_one_line_not_their_other_parameters():
    from lottery_ticket.mask import select_names

    class OnlyScale(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(4))

    model = nn.Sequential(nn.Linear(4, 4), OnlyScale())
    with pytest.raises(LotteryTicketError, match="the model has no OnlyScale with weights"):
        select_names(model, None, ["type:OnlyScale"], None)
