"""``sciml --help`` is fast (building the parser imports no torch) and shows the true defaults."""

import json
import subprocess
import sys
import textwrap

import pytest

from sciml.cli import _parser

# Runs in a fresh interpreter: this test process has torch loaded already.
_PROBE = textwrap.dedent("""
    import argparse, json, re, sys
    from sciml.cli import _parser
    parser = _parser()
    loaded = sorted(m for m in ("torch", "numpy", "xarray") if m in sys.modules)
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    shown = {}
    for command in ("train", "quickstart"):
        for action in commands[command]._actions:
            found = re.search(r"\\(default ([^)]*)\\)", action.help or "")
            if found and action.dest.startswith("train_"):
                shown[f"{command}.{action.dest[6:]}"] = found.group(1)
        for action in commands[command]._actions:
            found = re.search(r"\\(default ([^)]*)\\)", action.help or "")
            if found and not action.dest.startswith("train_"):
                shown[f"{command}.{action.dest}"] = found.group(1)
    print(json.dumps({"loaded": loaded, "shown": shown}))
""")


@pytest.fixture(scope="module")
def probe():
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_building_the_parser_imports_no_torch(probe):
    # before: the parser imported QuickstartConfig and TrainConfig, and `import sciml` imported torch (9 s)
    assert probe["loaded"] == []


def test_the_help_shows_the_true_dataclass_defaults(probe):
    from sciml.quickstart import QuickstartConfig
    from sciml.train import TrainConfig

    shown = probe["shown"]
    train, quick = TrainConfig(), QuickstartConfig()
    for name in ("epochs", "max_time", "batch_size", "lr", "weight_decay", "schedule", "warmup_fraction", "grad_clip",
                 "precision", "patience", "checkpoint_every", "workers", "seed", "device"):
        assert shown[f"train.{name}"] == str(getattr(train, name)), name
    for name in ("epochs", "max_time", "batch_size", "lr", "seed", "device"):
        assert shown[f"quickstart.{name}"] == str(getattr(quick.train, name)), name
    for name in ("resolution", "n_train", "n_test"):
        assert shown[f"quickstart.{name}"] == str(getattr(quick, name)), name
    assert shown["quickstart.eval_resolutions"] == ",".join(map(str, quick.eval_resolutions))


def test_every_option_has_help_text_and_predict_a_description():
    import argparse

    parser = _parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert commands["predict"].description

    def without_help(name, command):  # every option of every command, and of the capability groups' commands
        for action in command._actions:
            if not action.help:
                yield f"{name} {'/'.join(action.option_strings) or action.dest}"
            if isinstance(action, argparse._SubParsersAction):
                for sub, parser in action.choices.items():
                    yield from without_help(f"{name} {sub}", parser)

    missing = [line for name, command in commands.items() for line in without_help(name, command)]
    assert missing == []
    devices = [(name, "--device") for name in ("predict", "evaluate", "train", "bench", "forecast", "generate", "quickstart")]
    for name, option in (*devices, ("train", "--epochs"), ("train", "--batch-size"), ("train", "--lr"), ("train", "--seed"),
                         ("train", "--device"), ("predict", "--batch-size"), ("evaluate", "--batch-size")):
        action = next(a for a in commands[name]._actions if option in a.option_strings)
        assert "default" in (action.help or ""), (name, option)


def test_the_subpackages_are_attributes_of_a_lazily_imported_sciml():
    import subprocess
    import sys

    code = ("import sys, sciml; assert 'torch' not in sys.modules; "
            "print(sciml.data.open.__name__, sciml.datasets.generate.__name__, sciml.node.predict_statistics.__name__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["open", "generate", "predict_statistics"]
