"""Config is plain data (issue 24, item 7): config.py imports no registry; names are checked where registries live.

Before this, config.py imported the pruner and control registries to validate names, which closed an import circle
through pruning, imp and training. Now registries.check_names checks a config's model, dataset, pruner and controls,
and every way a config reaches a run (the command line, the runner, a stored run folder) goes through it before
any file is written.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import lottery_ticket.config as config_module
from lottery_ticket.cli import main
from lottery_ticket.config import ExperimentConfig, PruneConfig
from lottery_ticket.errors import LotteryTicketError
from lottery_ticket.experiment.runfolder import RunFolder, experiment_digest, read_run_config
from lottery_ticket.experiment.runner import ExperimentRunner
from lottery_ticket.imp.controls import CONTROLS, check_controls
from lottery_ticket.pruning.registry import PRUNERS, check_pruner
from lottery_ticket.registries import check_names

REGISTRY_PACKAGES = ("pruning", "imp", "models", "data", "training", "experiment", "export")


def test_config_module_imports_no_registry_package_even_inside_functions():
    tree = ast.parse(Path(config_module.__file__).read_text())
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level]
    assert imported and not [m for m in imported if m.split(".")[0] in REGISTRY_PACKAGES], imported


def test_building_a_config_loads_no_model_pruner_control_or_training_code():
    code = ("import sys\nfrom lottery_ticket.config import ExperimentConfig, PruneConfig\n"
            "ExperimentConfig(model='lenet300', dataset='mnist', controls=('reinit', 'random-prune'),\n"
            "                 prune=PruneConfig(pruner='nm', nm='1:4', min_density=0.01))\n"
            "print(sorted(m for m in sys.modules if m.startswith('lottery_ticket.')))\n")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout.replace("'", '"'))
    assert not [m for m in loaded if m.split(".")[1] in REGISTRY_PACKAGES], loaded


def test_plain_settings_are_still_checked_at_construction():
    with pytest.raises(LotteryTicketError, match=r"nm='4:2': need 1 <= N <= M"):
        PruneConfig(nm="4:2")
    with pytest.raises(LotteryTicketError, match=r"min_density=1.5 is not a fraction in \[0, 1\)"):
        PruneConfig(min_density=1.5)


@pytest.mark.parametrize("change, message", [
    (dict(model="lenet301"), "unknown model 'lenet301'; choose from lenet300, lenet5"),
    (dict(dataset="imagenet"), "unknown dataset 'imagenet'; choose from"),
    (dict(prune=PruneConfig(pruner="magnitud")), f"unknown pruner 'magnitud'; choose from {', '.join(PRUNERS)}"),
    (dict(controls=("reinit", "shuffle")), f"unknown control(s) ['shuffle']; choose from {', '.join(CONTROLS)}"),
])
def test_check_names_refuses_each_unknown_name_in_one_line(change, message):
    config = ExperimentConfig(**{"model": "mnist1d_mlp", "dataset": "mnist1d", **change})  # plain data: accepted
    with pytest.raises(LotteryTicketError) as excinfo:
        check_names(config)
    assert str(excinfo.value).startswith(message) and "\n" not in str(excinfo.value)


def test_check_names_passes_registered_names_and_import_paths_through():
    config = ExperimentConfig(model="mnist1d_mlp", dataset="mnist1d", controls=tuple(CONTROLS),
                              prune=PruneConfig(pruner="random"))
    assert check_names(config) is config
    assert check_pruner("magnitude") == "magnitude"
    assert check_controls(["reinit"]) == ("reinit",)


def test_the_runner_refuses_an_unknown_name_before_the_folder_exists(tmp_path):
    config = ExperimentConfig(model="mnist1d_mlp", dataset="mnist1d", controls=("shufle",))
    with pytest.raises(LotteryTicketError, match=r"unknown control\(s\) \['shufle'\]"):
        ExperimentRunner(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_command_line_refuses_an_unknown_pruner_before_writing(tmp_path, capsys):
    assert main(["find", "--preset", "mnist1d-mlp", "--pruner", "magnitud", "--out", str(tmp_path / "run")]) == 2
    assert "unknown pruner 'magnitud'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_stored_config_naming_an_unknown_pruner_is_one_line_on_reading(tmp_path):
    run = tmp_path / "run"
    assert main(["find", "--preset", "mnist1d-mlp", "--budget", "20it", "--eval-every", "20it", "--rounds", "1",
                 "--quiet", "--out", str(run)]) == 0
    stored = json.loads((run / "config.json").read_text())
    stored["experiment"].setdefault("prune", {})["pruner"] = "magnitud"
    stored["experiment_sha256"] = experiment_digest(stored["experiment"])
    (run / "config.json").write_text(json.dumps(stored))
    with pytest.raises(LotteryTicketError) as excinfo:
        read_run_config(RunFolder(run))
    assert "does not describe an experiment (unknown pruner 'magnitud'" in str(excinfo.value)


def test_list_shows_every_pruner_and_control_with_one_line_each(capsys):
    from lottery_ticket.cli import main
    from lottery_ticket.imp.controls import CONTROLS
    from lottery_ticket.pruning.registry import PRUNERS

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    pruners = out.split("pruners (--pruner):\n")[1].split("controls (--controls):\n")[0].splitlines()
    controls = out.split("controls (--controls):\n")[1].splitlines()
    assert [line.split()[0] for line in pruners] == list(PRUNERS)
    assert [line.split()[0] for line in controls] == list(CONTROLS)
    assert not any("without a summary" in line for line in pruners + controls)
