"""Files from others load without running their code, and damaged or misordered data fail loudly.

Exported programs (``sciml.load_exported``), saved surrogates, checkpoints, NetCDF3/NetCDF4/zarr files,
in-memory datasets in any dim order, and the temporaries of interrupted writes.
"""

import hashlib
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import torch
import xarray as xr

import sciml
from sciml import DataError, Grid, data
from sciml._atomic import atomic_directory, atomic_path, write_text
from sciml.evaluation import evaluate
from sciml.models import build, defaults_for
from sciml.surrogate import ChannelNormalizer, NormalizedOperator, Surrogate, fit_surrogate
from sciml.train import TrainConfig
from sciml.train.checkpoint import read_checkpoint, write_checkpoint

OPTIONS = {"hidden_channels": 4, "n_modes": (4, 4), "n_layers": 1}


class _Payload:
    """Unpickling this writes ``path``: proof that a loader ran code from the file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return exec, (f"open({self.path!r}, 'w').write('ran')",)


def _surrogate(shape=(16, 16), inputs=("u",), outputs=("u",)):
    grid = Grid.box(*shape)
    options = {"in_channels": len(inputs), "out_channels": len(outputs), **defaults_for("fno", grid, OPTIONS), **OPTIONS}
    torch.manual_seed(0)
    module = NormalizedOperator(build("fno", **options), len(inputs), len(outputs))
    module.input_norm.set([0.5] * len(inputs), [0.3] * len(inputs))
    module.output_norm.set([0.1] * len(outputs), [2.0] * len(outputs))
    return Surrogate(module=module, inputs=inputs, outputs=outputs, grid=grid, units=dict.fromkeys({*inputs, *outputs}, "1"),
                     model="fno", model_options=options, origin={"y": 0.0, "x": 0.0})


def _fields(n=3, shape=(16, 16), names=("u",), seed=0):
    rng = np.random.default_rng(seed)
    ny, nx = shape
    return xr.Dataset({name: (("sample", "y", "x"), rng.standard_normal((n, ny, nx)).astype(np.float32), {"units": "1"})
                       for name in names}, coords={"sample": np.arange(n), "y": np.arange(ny) / ny, "x": np.arange(nx) / nx})


# ----------------------------------------------------------------------------- 1. exported programs

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    surrogate = _surrogate()
    path = surrogate.export(tmp_path_factory.mktemp("export") / "u.pt2")
    return surrogate, path


def _tampered(source, tmp_path, edit):
    """A copy of the archive ``source`` with ``edit(entries)`` applied to its ``{name under the root: bytes}``."""
    with zipfile.ZipFile(source) as archive:
        root = archive.namelist()[0].split("/")[0]
        entries = {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist()}
    edit(entries)
    out = tmp_path / "tampered.pt2"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, content in entries.items():
            archive.writestr(f"{root}/{name}", content)
    return out


def test_an_export_loads_safely_and_carries_a_neutral_root_name_and_its_hash(exported):
    surrogate, path = exported
    with zipfile.ZipFile(path) as archive:
        # saved from memory: not under the temporary file's name (nor with torch's warning about it)
        assert {name.split("/")[0] for name in archive.namelist()} == {"archive"}
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert (path.parent / "u.pt2.sha256").read_text() == f"{digest}  u.pt2\n"
    assert surrogate.provenance["export"] == {"file": "u.pt2", "sha256": digest, "torch_version": torch.__version__}
    assert sorted(p.name for p in path.parent.iterdir()) == ["u.pt2", "u.pt2.sha256"]
    program = sciml.load_exported(path, sha256=digest).module()
    fields = torch.randn(2, 1, 24, 20)
    torch.testing.assert_close(program(fields), surrogate.predict_tensor(fields), rtol=1e-5, atol=1e-6)
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: SHA-256 {digest} differs from the expected 00ff"):
        sciml.load_exported(path, sha256="00ff")


def _pickled_weight(marker):
    def edit(entries):
        name = "data/weights/model_weights_config.json"
        config = json.loads(entries[name])
        meta = next(iter(config["config"].values()))
        meta["use_pickle"] = True
        entries[name] = json.dumps(config).encode()
        entries[f"data/weights/{meta['path_name']}"] = pickle.dumps(_Payload(marker), protocol=2)
    return edit


def _pickled_sample_inputs(marker):
    def edit(entries):
        entries["data/sample_inputs/model.pt"] = pickle.dumps(_Payload(marker), protocol=2)
    return edit


def _program_edit(change):
    def edit(entries):
        program = json.loads(entries["models/model.json"])
        change(program)
        entries["models/model.json"] = json.dumps(program).encode()
    return edit


def _first(node, key):
    """The first dict holding ``key`` in a JSON tree."""
    if isinstance(node, dict):
        if key in node:
            return node
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            found = _first(item, key)
            if found is not None:
                return found
    return None


def _code(marker):
    return f"__import__('os').system('touch {marker}')"


TAMPERING = {
    "a weight marked use_pickle": (_pickled_weight, "stores .* as a pickled object"),
    "sample inputs that only a full unpickle reads": (_pickled_sample_inputs, "sample_inputs/model.pt is not plain tensors"),
    "a shape expression with code": (lambda m: _program_edit(lambda p: _first(p, "expr_str").update(expr_str=_code(m))),
                                     "is not arithmetic"),
    "guard code with code": (lambda m: _program_edit(lambda p: p["guards_code"].append(_code(m))), "is not arithmetic"),
    "a node name that is code": (lambda m: _program_edit(lambda p: _first(p["graph_module"]["graph"]["nodes"], "as_name")
                                                         .update(as_name=f"x; {_code(m)}")), "is not an identifier"),
    "a call of a python function": (lambda m: _program_edit(lambda p: p["graph_module"]["graph"]["nodes"][0]
                                                            .update(target="torch.serialization.load")),
                                    "operator 'torch.serialization.load' is not"),
    "a pickled constant": (lambda m: lambda e: e.update({"data/constants/opaque_obj_0":
                                                         pickle.dumps(_Payload(m), protocol=2)}),
                           "entry 'data/constants/opaque_obj_0' is not part of a plain exported program"),
    "a compiled library": (lambda m: lambda e: e.update({"data/aotinductor/model/model.so": b"\x7fELF"}),
                           "entry 'data/aotinductor/model/model.so'"),
}


@pytest.mark.parametrize("case", TAMPERING)
def test_load_exported_refuses_archives_that_would_run_code(exported, tmp_path, case):
    make, message = TAMPERING[case]
    marker = tmp_path / "ran"
    path = _tampered(exported[1], tmp_path, make(marker))
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: refused to load: .*{message}"):
        sciml.load_exported(path)
    assert not marker.exists()


# ----------------------------------------------------------------------------- 2. damaged files

def _coordinates_first_classic(path, fmt="NETCDF3_CLASSIC", record=False):
    """Coordinates before a 100 x 100 field (the order in which a cut file still reads as plausible data)."""
    with netCDF4.Dataset(path, "w", format=fmt) as f:
        f.createDimension("sample", None if record else 1)
        for dim in ("y", "x"):
            f.createDimension(dim, 100)
            f.createVariable(dim, "f8", (dim,))[:] = np.arange(100) / 100
        f.createVariable("u", "f8", ("sample", "y", "x"))[:] = np.random.default_rng(0).random((1, 100, 100))
    return path


@pytest.mark.parametrize("fmt, record", [("NETCDF3_CLASSIC", False), ("NETCDF3_64BIT_OFFSET", True),
                                         ("NETCDF3_64BIT_DATA", False)])
def test_a_netcdf3_file_shorter_than_its_header_is_refused(tmp_path, fmt, record):
    path = _coordinates_first_classic(tmp_path / "full.nc", fmt, record)
    assert data.open(path)["u"].shape == (1, 100, 100)  # the whole file reads
    cut = tmp_path / "cut.nc"
    cut.write_bytes(path.read_bytes()[:-5000])  # netCDF-C filled the missing values from a stale buffer
    size = path.stat().st_size
    with pytest.raises(DataError) as err:
        data.open(cut)
    assert str(err.value) == (f"{cut}: truncated or corrupt file (its header declares {size} bytes, the file has "
                              f"{size - 5000}); re-create or re-download it")
    bare = tmp_path / "bare.nc"
    bare.write_bytes(b"CDF\x01")
    with pytest.raises(DataError) as err:
        data.open(bare)
    assert str(err.value) == (f"{bare}: truncated or corrupt file (the NetCDF3 header is cut short at byte 4); "
                              "re-create or re-download it")


def test_a_netcdf4_file_whose_writer_was_killed_is_refused(tmp_path):
    path = tmp_path / "half.nc"
    writer = (
        "import os, signal, netCDF4, numpy as np\n"
        f"f = netCDF4.Dataset({str(path)!r}, 'w', format='NETCDF4')\n"
        "f.createDimension('y', 100); f.createDimension('x', 100)\n"
        "f.createVariable('y', 'f8', ('y',))[:] = np.arange(100) / 100\n"
        "f.createVariable('x', 'f8', ('x',))[:] = np.arange(100) / 100\n"
        "f.createVariable('u', 'f8', ('y', 'x'))[:50] = 1.0\n"
        "f.sync()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", writer], check=False)
    with pytest.raises(DataError) as err:
        data.open(path)  # before: opened, the unwritten half read as fill values
    assert str(err.value) == (f"{path}: was not closed by its writer (the HDF5 superblock still marks it open for "
                              "writing), so its data may be incomplete; wait for the writer to finish, or re-create the file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_a_file_without_read_permission_is_a_one_line_error(tmp_path):
    path = _coordinates_first_classic(tmp_path / "secret.nc")
    path.chmod(0)
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: cannot read it \(Permission denied\); check its permissions$"):
        data.open(path)


def test_a_zarr_store_naming_the_pickle_codec_is_refused_before_any_read(tmp_path):
    store = tmp_path / "s.zarr"
    xr.Dataset({"u": (("sample", "x"), np.zeros((1, 4)))}, coords={"x": np.arange(4.0)}).to_zarr(
        store, zarr_format=2, consolidated=False)
    meta = json.loads((store / "u" / ".zarray").read_text())  # object arrays decoded by unpickling each chunk
    (store / "u" / ".zarray").write_text(json.dumps({**meta, "dtype": "|O", "filters": [{"id": "pickle"}]}))
    with pytest.raises(DataError, match=rf"^{re.escape(str(store / 'u' / '.zarray'))}: names the pickle codec"):
        data.open(store)


# ----------------------------------------------------------------------------- 3. dim order

def test_predict_and_evaluate_align_a_transposed_dataset_by_dim_name():
    surrogate = _surrogate()
    ds = _fields()
    swapped = ds.transpose("sample", "x", "y")
    expected = surrogate.predict(ds)
    got = surrogate.predict(swapped)
    assert got["u"].dims == ("sample", "y", "x")  # the canonical order, whatever the input's
    np.testing.assert_allclose(got["u"].values, expected["u"].values, rtol=1e-6, atol=1e-6)
    assert evaluate(surrogate, swapped)["rel_l2_by_resolution"] == evaluate(surrogate, ds)["rel_l2_by_resolution"]


def test_loaders_and_training_align_a_transposed_dataset_by_dim_name():
    ds = _fields(n=4, shape=(8, 12), names=("a", "b"))
    scrambled = ds.transpose("x", "sample", "y")
    pairs, scrambled_pairs = (data.OperatorPairs(d, inputs=["a"], outputs=["b"]) for d in (ds, scrambled))
    for (x, y), (x2, y2) in zip(pairs.__getitems__(range(4)), scrambled_pairs.__getitems__(range(4))):
        assert x2.shape == (1, 8, 12)
        torch.testing.assert_close((x2, y2), (x, y), rtol=0, atol=0)
    torch.testing.assert_close(data.stack_fields(scrambled, ["a", "b"]), data.stack_fields(ds, ["a", "b"]), rtol=0, atol=0)
    square = _fields(n=4, names=("a", "b"))
    config = TrainConfig(epochs=1, batch_size=2, seed=0, device="cpu", progress=False)
    runs = [fit_surrogate(d, inputs=["a"], outputs=["b"], model_options=OPTIONS, config=config)[1]
            for d in (square, square.transpose("sample", "x", "y"))]
    assert runs[1][0]["train_loss"] == pytest.approx(runs[0][0]["train_loss"], rel=1e-6)


# ----------------------------------------------------------------------------- 4. saved surrogates

@pytest.fixture()
def saved(tmp_path):
    return _surrogate().save(tmp_path / "run")


def _edit_weights(directory, change):
    weights = directory / "weights.pt"
    state = torch.load(weights, weights_only=True)
    change(state)
    torch.save(state, weights)
    return weights


def test_a_surrogate_with_nan_weights_or_a_zero_scale_is_refused_on_load(saved):
    weights = _edit_weights(saved, lambda s: s["network.operator.lifting.fcs.0.weight"].view(-1)[0].fill_(float("nan")))
    with pytest.raises(DataError) as err:
        Surrogate.load(saved)
    assert str(err.value) == (f"{weights}: tensor 'network.operator.lifting.fcs.0.weight' has NaN/Inf values; the "
                              "weights are corrupt: re-save or retrain")
    _surrogate().save(saved, overwrite=True)
    _edit_weights(saved, lambda s: s["input_norm.std"].zero_())
    with pytest.raises(DataError) as err:
        Surrogate.load(saved)
    assert str(err.value) == (f"{weights}: tensor 'input_norm.std' (normalisation scales) holds [0.0]; scales must be "
                              "positive: the weights are corrupt, re-save or retrain")
    with pytest.raises(DataError, match=r"channels \[0\] have normalisation statistics mean=\[nan\]"):
        ChannelNormalizer(1).set([float("nan")], [1.0])


def test_damaged_weights_and_manifests_are_one_line_errors(saved, tmp_path):
    weights, manifest = saved / "weights.pt", saved / "manifest.json"
    good_weights, good_manifest = weights.read_bytes(), manifest.read_text()
    marker = tmp_path / "ran"
    for content, error in ((pickle.dumps(_Payload(marker), protocol=2), "UnpicklingError"), (good_weights[:500], "RuntimeError"),
                           (b"", "EOFError")):
        weights.write_bytes(content)
        with pytest.raises(DataError, match=rf"^{re.escape(str(weights))}: unreadable surrogate weights \({error}: .*\); "
                                            "re-save the surrogate$"):
            Surrogate.load(saved)
    assert not marker.exists()
    weights.write_bytes(good_weights)
    cases = [("{not json", "unreadable surrogate manifest"), ("[1, 2]", r"not a surrogate manifest \(a JSON list, not an object\)"),
             (json.dumps({k: v for k, v in json.loads(good_manifest).items() if k != "units"}), "surrogate manifest lacks 'units'")]
    for text, message in cases:
        manifest.write_text(text)
        with pytest.raises(DataError, match=rf"^{re.escape(str(manifest))}: {message}"):
            Surrogate.load(saved)
    wider = json.loads(good_manifest)
    wider["model_options"]["hidden_channels"] = 8
    manifest.write_text(json.dumps(wider))
    with pytest.raises(DataError, match=rf"^{re.escape(str(weights))}: tensor '.+' has shape \(.+\), the model in "
                                        r"manifest.json needs \(.+\); the weights and manifest.json do not belong together$"):
        Surrogate.load(saved)


# ----------------------------------------------------------------------------- 5. interrupted writes

def _killed_write(target, directory=False):
    """Start a write of ``target`` in a forked process, kill -9 it halfway; return what it left."""
    pid = os.fork()
    if pid == 0:  # the child writes and dies without cleaning up
        with (atomic_directory if directory else atomic_path)(target) as tmp:
            if directory:
                (tmp / "weights.pt").write_bytes(b"x" * 100)
            else:
                xr.Dataset({"u": (("y", "x"), np.full((4, 4), 9.96921e36))}).to_netcdf(tmp, engine="netcdf4")
            os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(pid, 0)
    (left,) = [p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.")]
    return left


def test_temporaries_of_killed_writes_are_refused_skipped_and_removed_by_the_next_write(tmp_path):
    target = tmp_path / "out.nc"
    left = _killed_write(target)
    assert re.fullmatch(r"\.out\.nc\.[0-9a-f]{8}\.partial", left.name) and (left / "out.nc").is_file()
    for path in (left, left / "out.nc"):
        with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: part of an unfinished write of 'out.nc' that is "
                                            "still running or was interrupted"):
            data.open(path)
    ds = _fields(n=1)
    data.write(ds, tmp_path / "keep.nc")
    assert list(data.open(str(tmp_path / "*"))["u"].shape) == [1, 16, 16]
    with pytest.raises(DataError, match="the pattern matches no file"):
        data.open(str(tmp_path / ".*"))  # globs skip temporaries
    users = [tmp_path / name for name in (".out.nc.backup", ".out.nc.0123456.partial", ".other.nc.0123abcd.partial",
                                          ".out.nc.0123abcd.tmp")]
    for path in users:
        path.write_text("the user's")
    data.write(ds, target)
    assert not left.exists() and all(p.read_text() == "the user's" for p in users)
    assert data.open(target)["u"].shape == (1, 16, 16)
    run = tmp_path / "run"
    staging = _killed_write(run, directory=True)
    with pytest.raises(DataError, match="part of an unfinished write of 'run'"):
        Surrogate.load(staging)
    _surrogate().save(run)
    assert not staging.exists() and Surrogate.load(run).inputs == ["u"]


def test_a_live_writers_temporary_is_left_alone(tmp_path):
    target = tmp_path / "shared.txt"
    started, finish = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:  # another process, halfway through writing the same target
        with atomic_path(target) as tmp:
            tmp.write_text("theirs")
            os.write(started[1], str(tmp).encode())
            os.read(finish[0], 1)
        os._exit(0)
    live = Path(os.read(started[0], 4096).decode())
    write_text(target, "ours")
    assert live.read_text() == "theirs" and target.read_text() == "ours"
    os.write(finish[1], b"x")
    assert os.waitpid(pid, 0)[1] == 0
    assert target.read_text() == "theirs" and sorted(p.name for p in tmp_path.iterdir()) == ["shared.txt"]
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:  # a failed write leaves nothing behind
        tmp.write_text("half")
        raise RuntimeError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.txt"]


# ----------------------------------------------------------------------------- checkpoints

def test_checkpoints_refuse_outside_tensors_files_and_nan_states_and_keep_the_users_files(tmp_path):
    notes = [tmp_path / name for name in (".notes.tmp", "state-notes.pt")]
    for path in notes:
        path.write_text("the user's")
    stale = tmp_path / ".state-000000001-0123abcd.pt.89abcdef.partial"
    stale.mkdir()
    manifest = {"epoch": 1, "batch": 0, "step": 2, "done": False, "elapsed_s": 0.0, "best_val": None, "bad_epochs": 0,
                "history": [], "config": {}, "optimizer": {}, "task": {}, "log_names": []}
    path = write_checkpoint(tmp_path, {"model/w": torch.ones(2)}, manifest)
    assert all(p.read_text() == "the user's" for p in notes) and not stale.exists()
    assert read_checkpoint(tmp_path)[1]["model/w"].tolist() == [1.0, 1.0]
    saved = json.loads(path.read_text())
    for outside in ("../elsewhere.pt", "/etc/passwd", "state-x.pt"):
        path.write_text(json.dumps({**saved, "tensors": outside}))
        with pytest.raises(DataError, match=rf"names tensors file {re.escape(repr(outside))}, not a state-<step>-<hex>.pt file"):
            read_checkpoint(tmp_path)
    write_checkpoint(tmp_path, {"model/w": torch.tensor([1.0, float("nan")])}, manifest)
    with pytest.raises(DataError, match=r"tensor 'model/w' has NaN values; the checkpoint is corrupt"):
        read_checkpoint(tmp_path)
    marker = tmp_path / "ran"
    (tmp_path / json.loads(path.read_text())["tensors"]).write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    with pytest.raises(DataError, match=r"unreadable checkpoint tensors \(UnpicklingError: [^\n]*\); delete .* to start afresh$"):
        read_checkpoint(tmp_path)
    assert not marker.exists()


def test_canonical_order_keeps_a_lazy_file_lazy_and_named(tmp_path):
    """Aligning by dim name reads nothing and keeps the file's name for error messages."""
    path = data.write(_fields(n=2), tmp_path / "lazy.nc")
    ds = data.open(path).transpose("x", "y", "sample")
    ordered = data.tensors.in_canonical_order(ds)
    assert ordered["u"].dims == ("sample", "y", "x") and not ordered["u"].variable._in_memory
    assert data.tensors.source_name(ordered) == str(path)
