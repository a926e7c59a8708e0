"""Train the tiny conv net of ``_train_script`` with ``sciml.train.fit``: in one process, or under ``torchrun`` on one
node or several. Used by tests/test_multinode.py.

``--crash-after N`` stops every rank with an error right after optimiser step ``N`` (a failure all ranks share, so
no rank waits in a collective), leaving the last checkpoint behind. ``--trace DIR`` writes
``DIR/rank-<RANK>.json``: for every epoch, the item indices of every batch this rank computed its loss on. As a
script, rank 0 writes ``<out>/params.pt`` and ``<out>/history.json`` (the history without wall-clock times).
"""

import argparse
import json
import os
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _train_script

from sciml.train import TrainConfig, fit, seed_everything

CRASH_EXIT = 3


class Crash(RuntimeError):
    """The planned stop of ``--crash-after``."""


class Traced(Dataset):
    """Tensors with a shared leading dim that record the indices of every batch read, per epoch."""

    def __init__(self, tensors: tuple[torch.Tensor, ...]) -> None:
        self.tensors, self.epoch, self.seen = tensors, 0, {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: int):
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices):
        self.seen.setdefault(str(self.epoch), []).append([int(i) for i in indices])
        return [self[i] for i in indices]


class Stopping(_train_script.Regression):
    def __init__(self, model, crash_after: int | None) -> None:
        super().__init__(model)
        self.crash_after = crash_after

    def after_step(self, model, step):
        super().after_step(model, step)
        if step == self.crash_after:
            raise Crash(f"planned stop after step {step}")


def run(argv: list[str] | None = None) -> tuple[argparse.Namespace, Stopping, list[dict], Traced]:
    """Parse ``argv`` and train; the tests also call this in their own process (one process)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--n-train", type=int, default=37)
    parser.add_argument("--checkpoint-dir")
    parser.add_argument("--checkpoint-every", type=int)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--log-file")
    parser.add_argument("--crash-after", type=int)
    parser.add_argument("--trace")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seed_everything(0)
    model = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1, padding_mode="circular"), nn.GELU(), _train_script.Spectral(8),
                          nn.Conv2d(8, 1, 3, padding=1, padding_mode="circular"))
    task = Stopping(model, args.crash_after)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=1e-2, seed=0, device="cpu",
                         progress=False, checkpoint_every=args.checkpoint_every)
    data = Traced(_train_script.data(args.n_train, 1))
    try:
        history = fit(task, data, val_data=_train_script.data(11, 2), config=config, log_path=args.log_file,
                      checkpoint_dir=args.checkpoint_dir, resume=args.resume)
    finally:
        if args.trace:
            Path(args.trace).mkdir(parents=True, exist_ok=True)
            (Path(args.trace) / f"rank-{os.environ.get('RANK', '0')}.json").write_text(json.dumps(data.seen))
    return args, task, [{k: v for k, v in r.items() if k != "elapsed_s"} for r in history], data


def main() -> None:
    try:
        args, task, history, _ = run()
    except Crash as error:
        print(error, flush=True)
        sys.exit(CRASH_EXIT)
    if int(os.environ.get("RANK", "0")) == 0:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        torch.save(_train_script.state(task), out / "params.pt")
        (out / "history.json").write_text(json.dumps(history))


if __name__ == "__main__":
    main()
