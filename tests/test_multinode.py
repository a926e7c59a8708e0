"""Multi-node training: rank sharding (every item exactly once per epoch), the global batch and the world size, and
``torchrun --nnodes 2`` on localhost (two node ranks, gloo, CPU) with rank-0 checkpoints resumed on another world size.

What "exact" means across world sizes: ``batch_size`` is the global batch and global batch ``k`` of epoch ``e`` holds the
same items whatever the number of processes, so a run resumed on another world size has the same step, epoch and batch
counters, the same items in every step, the same learning rate at every step (bitwise) and the same epochs already
recorded; its losses and parameters equal the uninterrupted run's up to rounding (gradients summed over two ranks round
differently from one batch mean: rel 1e-5 on losses, 1e-4 on parameters, as the single-node DDP test). On the same
world size the resume is bitwise (tests/test_train_loop.py).
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from itertools import pairwise
from pathlib import Path

import _multinode_script
import pytest
import torch

from sciml import ConfigError, DataError
from sciml.data import ChunkShuffleSampler
from sciml.train import TrainConfig, fit, read_checkpoint
from sciml.train.batches import GlobalBatches
from sciml.train.distributed import Processes, local_batch_size, shard

SCRIPT = Path(__file__).with_name("_multinode_script.py")
ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 420  # seconds per torchrun launch: generous for a busy 2-core machine


# ---------------------------------------------------------------------------------------------------------------
# Sharding by rank: every item exactly once per epoch


def test_shard_gives_disjoint_contiguous_parts_that_cover_every_index_once():
    for length in range(23):
        for world in range(1, 6):
            parts = [shard(length, r, world) for r in range(world)]
            assert [i for p in parts for i in p] == list(range(length))  # in order: contiguous, disjoint, no padding
            sizes = [len(p) for p in parts]
            assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
            assert sizes[0] == -(-length // world)
    assert list(shard(10, 2, 4)) == [6, 7]  # parts 3, 3, 2, 2
    with pytest.raises(ConfigError, match="rank must be in"):
        shard(10, 4, 4)


def _weighted_items(length: int, batch_size: int, world: int, epoch: int, order=None) -> tuple[Counter, list]:
    """Items each rank computes a weighted loss on in one epoch (stand-ins of weight 0 left out), and the stand-ins."""
    counts, stand_ins = Counter(), []
    for rank in range(world):
        batches = GlobalBatches(length, batch_size, seed=5, order=order, rank=rank, world_size=world)
        batches.set_epoch(epoch)
        for k, part in enumerate(batches):
            assert len(part) == batches.share(k) or batches.share(k) == 0
            if batches.share(k) == 0:
                stand_ins.append((rank, k, part))
            else:
                counts.update(part)
    return counts, stand_ins


@pytest.mark.parametrize("length, batch_size, world", [(37, 4, 2), (40, 6, 3), (41, 8, 4), (5, 4, 4), (3, 4, 4)])
def test_fit_batches_give_every_item_to_exactly_one_rank_per_epoch(length, batch_size, world):
    # The plain path of fit (a full shuffle) and fit with a ChunkShuffleSampler order: lengths not divisible by the
    # world size or the batch; the remainder is a short last batch split over the ranks, never padded by repeats.
    for order in (None, ChunkShuffleSampler(length, block_size=3, seed=5)):
        orders = []
        for epoch in (0, 1, 2):
            counts, stand_ins = _weighted_items(length, batch_size, world, epoch, order)
            assert sorted(counts) == list(range(length)) and set(counts.values()) == {1}
            last = length % batch_size or batch_size  # only a rank with no item of the short last batch idles
            assert len(stand_ins) == max(0, world - last)
            assert all(k == -(-length // batch_size) - 1 and len(part) == 1 for _, k, part in stand_ins)
            whole = GlobalBatches(length, batch_size, seed=5, order=order)
            whole.set_epoch(epoch)
            orders.append([i for b in whole for i in b])
        if length > 10:
            assert len({tuple(o) for o in orders}) == 3  # another order every epoch
        again = GlobalBatches(length, batch_size, seed=5,
                              order=None if order is None else ChunkShuffleSampler(length, block_size=3, seed=5))
        again.set_epoch(1)
        assert [i for b in again for i in b] == orders[1]  # the same order for the same seed and epoch


@pytest.mark.parametrize("length, block, world", [(37, 4, 2), (37, 4, 3), (10, 3, 4), (7, 8, 2)])
def test_chunk_shuffle_replicas_partition_the_items_exactly_once_per_epoch(length, block, world):
    epochs = {}
    for epoch in (0, 1, 2, 3):
        shares = []
        for rank in range(world):
            sampler = ChunkShuffleSampler(length, block_size=block, seed=11, num_replicas=world, rank=rank)
            sampler.set_epoch(epoch)
            shares.append(list(sampler))
            assert len(sampler) == len(shares[-1])
        together = [i for s in shares for i in s]
        assert sorted(together) == list(range(length))  # disjoint, complete, no padding duplicates
        for share in shares:  # whole blocks of consecutive items
            assert all(b - a == 1 for a, b in pairwise(share) if b % block)
        epochs[epoch] = shares
    if -(-length // block) > 2:
        assert len({tuple(map(tuple, s)) for s in epochs.values()}) > 1  # orders change between epochs
    repeat = ChunkShuffleSampler(length, block_size=block, seed=11, num_replicas=world, rank=world - 1)
    repeat.set_epoch(2)
    assert list(repeat) == epochs[2][-1]  # and repeat for a seed


# ---------------------------------------------------------------------------------------------------------------
# The global batch, the world size and the checkpoint every rank must see


class _FakeRanks(Processes):
    """Rank 0 of ``world_size`` processes with no process group: fit's checks before its first collective."""

    def __init__(self, world_size: int, others_step: int = -1) -> None:
        super().__init__(0, world_size)
        self.others_step = others_step

    def gather(self, tensor):
        return [tensor] + [torch.full_like(tensor, self.others_step) for _ in range(self.world_size - 1)]


def _tiny_task():
    return _multinode_script.Stopping(torch.nn.Linear(4, 1), None)


def test_a_world_size_that_does_not_divide_the_global_batch_is_a_one_line_config_error(monkeypatch):
    assert local_batch_size(8, 4) == 2 and local_batch_size(6, 1) == 6
    with pytest.raises(ConfigError) as error:
        local_batch_size(6, 4)
    message = str(error.value)
    assert "\n" not in message and "batch_size 6" in message and "world size 4" in message and "e.g. 4 or 8" in message
    with pytest.raises(ConfigError, match="batch_size 2 .* world size 3"):  # smaller than the world: also refused
        local_batch_size(2, 3)
    from sciml.train import loop

    monkeypatch.setattr(loop, "processes", lambda device: (_FakeRanks(4), device))
    data = (torch.randn(12, 4), torch.randn(12, 1))
    with pytest.raises(ConfigError, match=r"^batch_size 6 \(the global batch\) is not divisible by the world size 4"):
        fit(_tiny_task(), data, config=TrainConfig(epochs=1, batch_size=6, device="cpu", progress=False))


def test_ranks_that_see_different_checkpoints_refuse_to_start(tmp_path, monkeypatch):
    # Rank 0 finds a checkpoint, another rank (its checkpoint_dir on node-local disk) finds none: all stop at once.
    data = (torch.randn(12, 4), torch.randn(12, 1))
    config = TrainConfig(epochs=1, batch_size=4, device="cpu", progress=False)
    fit(_tiny_task(), data, config=config, checkpoint_dir=tmp_path)
    from sciml.train import loop

    monkeypatch.setattr(loop, "processes", lambda device: (_FakeRanks(2), device))
    with pytest.raises(DataError, match=r"see different checkpoints \(rank 0: step 3, rank 1: none\); put checkpoint_dir on a "
                                        r"filesystem every node shares$"):
        fit(_tiny_task(), data, config=config, checkpoint_dir=tmp_path, resume=True)
    monkeypatch.setattr(loop, "processes", lambda device: (_FakeRanks(4), device))
    with pytest.raises(DataError, match=r"\(rank 0: step 3, rank 1: none, 2 more ranks differ\)"):
        fit(_tiny_task(), data, config=config, checkpoint_dir=tmp_path, resume=True)


# ---------------------------------------------------------------------------------------------------------------
# torchrun --nnodes 2 on localhost


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _two_nodes(per_node: list[list[str]]):
    """Two ``torchrun`` launches, node ranks 0 and 1, one process each, meeting at 127.0.0.1 (static rendezvous);
    on leaving, any launch still running is stopped (SIGTERM: torchrun ends its workers; then SIGKILL)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    port = str(_free_port())
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
                               "--node-rank", str(rank), "--master-addr", "127.0.0.1", "--master-port", port,
                               "--max-restarts", "0", str(SCRIPT), *args],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
             for rank, args in enumerate(per_node)]
    try:
        yield nodes
    finally:
        for node in nodes:
            if node.poll() is None:
                node.terminate()
                try:
                    node.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(node.pid, signal.SIGKILL)
                    node.wait()


def _finish(nodes: list[subprocess.Popen]) -> list[tuple[int, str]]:
    return [(node.returncode, output) for node in nodes for output in [node.communicate(timeout=TIMEOUT)[0]]]


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _check_against(history: list[dict], params: dict, reference: list[dict], reference_params: dict) -> None:
    assert [r["epoch"] for r in history] == [0, 1, 2]
    for got, want in zip(history, reference):
        assert got.keys() == want.keys() and got["lr"] == want["lr"]  # the schedule: bitwise
        for key in ("train_loss", "train_mae", "val_loss", "val_mae"):
            assert got[key] == pytest.approx(want[key], rel=1e-5), (got["epoch"], key)
    assert params.keys() == reference_params.keys()
    for key, value in reference_params.items():
        torch.testing.assert_close(params[key], value, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_two_node_ranks_checkpoint_once_and_resume_on_another_world_size(tmp_path):
    # 37 items in global batches of 4: 10 steps per epoch, the last of 1 item (node 1's share is a zero-weight
    # stand-in); checkpoints every 4 steps and at epoch ends; every run stops after step 15, in epoch 1, so the
    # checkpoint it leaves is step 12, two batches into epoch 1, with both ranks' partial loss sums.
    common = ["--epochs", "3", "--batch-size", "4", "--checkpoint-every", "4"]
    two = tmp_path / "two"
    with _two_nodes([
        [*common, "--out", str(two / "out"), "--checkpoint-dir", str(two / "ckpt"), "--log-file", str(two / "log.jsonl"),
         "--crash-after", "15", "--trace", str(two / "trace")],
        [*common, "--out", str(two / "out-node1"), "--checkpoint-dir", str(two / "ckpt-node1"),  # node-local paths
         "--log-file", str(two / "log-node1.jsonl"), "--crash-after", "15", "--trace", str(two / "trace")]]) as nodes:
        # Meanwhile, in this process: the uninterrupted reference, and a one-process run stopped at the same step.
        _, reference, expected, _ = _multinode_script.run([*common, "--out", "unused"])
        reference_params = _multinode_script._train_script.state(reference)
        one = tmp_path / "one"
        with pytest.raises(_multinode_script.Crash):
            _multinode_script.run([*common, "--out", "unused", "--checkpoint-dir", str(one / "ckpt"),
                                   "--log-file", str(one / "log.jsonl"), "--crash-after", "15"])
        for code, output in _finish(nodes):
            assert code != 0 and "planned stop after step 15" in output, output[-3000:]

    # Rank 0 alone wrote: one manifest and one tensors file, holding both ranks' RNG states and sums.
    assert len(_files(two / "ckpt")) == 2 and _files(two / "ckpt")[0] == "checkpoint.json", _files(two / "ckpt")
    manifest, tensors = read_checkpoint(two / "ckpt")
    assert (manifest["world_size"], manifest["epoch"], manifest["batch"], manifest["step"]) == (2, 1, 2, 12)
    assert {"rng/cpu/0", "rng/cpu/1"} <= tensors.keys() and tensors["loop/sums"].shape == (2, 3)
    assert tensors["loop/sums"][:, -1].tolist() == [4.0, 4.0]  # items of epoch 1 so far, per rank
    assert not any((two / name).exists() for name in ("ckpt-node1", "log-node1.jsonl", "out-node1"))
    assert [json.loads(line)["epoch"] for line in (two / "log.jsonl").read_text().splitlines()] == [0]

    # Under torchrun every item of epoch 0 entered exactly one rank's loss, in the global batches of one process.
    traces = [json.loads((two / "trace" / f"rank-{r}.json").read_text())["0"] for r in (0, 1)]
    whole = GlobalBatches(37, 4, seed=0)
    whole.set_epoch(0)
    assert [a + b for a, b in zip(traces[0][:-1], traces[1][:-1])] == list(whole)[:-1]
    assert traces[0][-1] == list(whole)[-1] and traces[1][-1] == traces[0][-1]  # the stand-in repeats it, weight 0
    counts = Counter(i for part in [*traces[0], *traces[1][:-1]] for i in part)
    assert sorted(counts) == list(range(37)) and set(counts.values()) == {1}

    # 1 -> 2: node ranks 0 and 1 resume the one-process checkpoint from a shared directory.
    manifest = read_checkpoint(one / "ckpt")[0]
    assert (manifest["world_size"], manifest["step"]) == (1, 12)
    with _two_nodes([
        [*common, "--out", str(one / "out"), "--checkpoint-dir", str(one / "ckpt"), "--log-file", str(one / "log.jsonl"),
         "--resume"],
        [*common, "--out", str(one / "out-node1"), "--checkpoint-dir", str(one / "ckpt"),
         "--log-file", str(one / "log-node1.jsonl"), "--resume"]]) as nodes:
        # 2 -> 1: meanwhile, this process resumes the two-node checkpoint.
        _, resumed, history, _ = _multinode_script.run([*common, "--out", "unused", "--checkpoint-dir", str(two / "ckpt"),
                                                        "--log-file", str(two / "log.jsonl"), "--resume"])
        _check_against(history, _multinode_script._train_script.state(resumed), expected, reference_params)
        logged = [json.loads(line) for line in (two / "log.jsonl").read_text().splitlines()]
        assert [{k: v for k, v in r.items() if k != "elapsed_s"} for r in logged] == history  # each epoch once
        manifest = read_checkpoint(two / "ckpt")[0]
        assert (manifest["world_size"], manifest["step"], manifest["done"]) == (1, 30, True)
        for code, output in _finish(nodes):
            assert code == 0, output[-3000:]
    history = json.loads((one / "out" / "history.json").read_text())
    _check_against(history, torch.load(one / "out" / "params.pt", weights_only=True), expected, reference_params)
    assert [json.loads(line)["epoch"] for line in (one / "log.jsonl").read_text().splitlines()] == [0, 1, 2]
    assert len(_files(one / "ckpt")) == 2
    manifest = read_checkpoint(one / "ckpt")[0]
    assert (manifest["world_size"], manifest["step"], manifest["done"]) == (2, 30, True)
    assert not any((one / name).exists() for name in ("out-node1", "log-node1.jsonl"))
