"""The AFNO of FourCastNet v1 (Pathak et al. 2022; mixer of Guibas et al. 2021): the mixer's structure
(block-diagonal, one map per Fourier mode, hard thresholding, softshrink), the paper preset's parameter
count, any grid in and out, and a short fit_surrogate run that learns heat flow."""

import json
import math

import numpy as np
import pytest
import torch
import xarray as xr

from sciml import ConfigError, Grid, Surrogate, gaussian_random_field, rel_l2
from sciml.models import AFNO_PRESETS, AFNOConfig, build, config_of, defaults_for
from sciml.models.afno import AFNOMixer
from sciml.spectral import wavenumbers
from sciml.surrogate import fit_surrogate
from sciml.train import TrainConfig

TINY = dict(in_channels=2, out_channels=3, preset="tiny")  # 32 x 64 training grid, patch 4: 8 x 16 tokens


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny models on a busy 2-core machine: a second intra-op thread mostly waits (as in test_models.py).
    torch.set_num_threads(1)


def _mixer(*, threshold=0.01, fraction=1.0, width=32, blocks=4, seed=0):
    torch.manual_seed(seed)
    return AFNOMixer(width, num_blocks=blocks, sparsity_threshold=threshold,
                     hard_thresholding_fraction=fraction).double()


def _tokens(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_mixer_is_block_diagonal_in_channels():
    mixer = _mixer()
    tokens = _tokens(1, 8, 16, 32)  # (batch, h, w, D); 4 blocks of 8 channels
    changed = tokens.clone()
    changed[..., 8:16] = _tokens(1, 8, 16, 8, seed=1)  # block 1 only
    with torch.no_grad():
        out, out_changed = mixer(tokens), mixer(changed)
    assert torch.equal(out[..., :8], out_changed[..., :8]) and torch.equal(out[..., 16:], out_changed[..., 16:])
    assert (out[..., 8:16] - out_changed[..., 8:16]).abs().max() > 0.1


def test_mixer_maps_every_fourier_mode_by_itself_through_one_shared_mlp():
    """``y_k = g(z_k)`` with the same ``g`` at every mode: two modes given the same coefficients come out
    equal, the modes given none all come out ``g(0)``, and changing one mode changes no other."""
    mixer = _mixer(threshold=0.0)
    h, w, width = 8, 16, 32
    coefficients = torch.complex(_tokens(width), _tokens(width, seed=1))
    spectrum = torch.zeros(1, h, w // 2 + 1, width, dtype=torch.complex128)
    spectrum[0, 1, 2] = spectrum[0, 5, 3] = coefficients  # interior columns: no Hermitian pairing in rfft2
    tokens = torch.fft.irfft2(spectrum, s=(h, w), dim=(1, 2), norm="ortho")
    with torch.no_grad():
        modes = mixer.modes(tokens)[0]  # (h, w // 2 + 1, D)
    torch.testing.assert_close(modes[1, 2], modes[5, 3], rtol=0, atol=1e-12)
    empty = torch.ones(h, w // 2 + 1, dtype=torch.bool)
    empty[1, 2] = empty[5, 3] = False
    torch.testing.assert_close(modes[empty], modes[0, 0].expand(int(empty.sum()), width), rtol=0, atol=1e-12)
    assert (modes[1, 2] - modes[0, 0]).abs().max() > 1e-3
    # one mode changed: only that mode's output changes (float64 FFT round-off elsewhere)
    bump = torch.zeros_like(spectrum)
    bump[0, 2, 4] = coefficients
    with torch.no_grad():
        bumped = mixer.modes(tokens + torch.fft.irfft2(bump, s=(h, w), dim=(1, 2), norm="ortho"))[0]
    change = (bumped - modes).abs().amax(dim=-1)
    assert change[2, 4] > 1e-3
    change[2, 4] = 0
    assert change.max() < 1e-12


def test_mixer_is_not_shift_equivariant():
    """Unlike an FNO layer, the paper's mixer does not commute with shifts of the token grid: a shift
    turns mode ``k`` by a phase, and the mode-space biases and the ReLU of real and imaginary parts
    are not phase-equivariant. Its response to the zero field is zero off token row 0 (the biases are
    constant in mode space), where a shift-equivariant map would give a constant field."""
    mixer = _mixer()
    with torch.no_grad():
        response = mixer(torch.zeros(1, 8, 16, 32, dtype=torch.float64))[0]  # (h, w, D)
        assert response[1:].abs().max() == 0 and response[0].abs().max() > 0.1
        for bias in (mixer.bias1, mixer.bias2):
            bias.zero_()  # without biases the part-wise ReLU still breaks equivariance
        tokens = _tokens(2, 8, 16, 32)
        shifted = torch.roll(tokens, (3, 5), dims=(1, 2))
        mixed_shifted = mixer(shifted) - shifted
        shifted_mixed = torch.roll(mixer(tokens) - tokens, (3, 5), dims=(1, 2))
    violation = float((mixed_shifted - shifted_mixed).norm() / shifted_mixed.norm())
    assert violation > 0.5, violation  # measured 1.16: the two are unrelated fields of the same size


def test_hard_thresholding_keeps_exactly_the_lowest_modes():
    tokens = _tokens(2, 8, 16, 32)  # energy in every mode
    with torch.no_grad():
        everything = _mixer(threshold=0.0).modes(tokens)
        half = _mixer(threshold=0.0, fraction=0.5).modes(tokens)
    assert (everything != 0).any(dim=-1).all()  # fraction 1: all 8 x 9 rfft2 modes
    # fraction 0.5 of 8 x 16 tokens: |k_1| < int(0.5 * 5) = 2 (rows 0, 1, 7), k_2 < int(0.5 * 9) = 4
    kept = torch.zeros(8, 9, dtype=torch.bool)
    kept[[0, 1, 7], :4] = True
    assert torch.equal((half != 0).any(dim=-1).any(dim=0), kept)
    assert torch.equal((half != 0).any(dim=-1).all(dim=0), kept)  # every kept mode nonzero in both samples
    assert torch.equal(half[:, kept], everything[:, kept])  # the kept ones are not changed
    assert torch.equal(_mixer(fraction=0.5).kept_modes(8, 16), kept)


def test_softshrink_zeroes_small_coefficients_and_shrinks_the_others():
    tokens = _tokens(2, 8, 16, 32)
    with torch.no_grad():
        raw = torch.view_as_real(_mixer(threshold=0.0).modes(tokens))
        shrunk = torch.view_as_real(_mixer(threshold=0.01).modes(tokens))
        silent = _mixer(threshold=1e3)
        assert torch.equal(silent(tokens), tokens)  # every coefficient shrunk to 0: only the residual is left
    expected = torch.where(raw.abs() <= 0.01, torch.zeros_like(raw), raw - 0.01 * raw.sign())
    torch.testing.assert_close(shrunk, expected, rtol=0, atol=1e-15)
    zeroed = float((shrunk == 0).double().mean())
    assert 0.2 < zeroed < 0.8, zeroed  # the paper's 0.01 bites at initialisation: measured 0.48 of the parts


def _closed_form_parameters(c_in, c_out, patch, width, depth, blocks, mlp_ratio, tokens):
    """Patch embedding (conv weight + bias), one positional vector per token, per block two LayerNorms
    (scale + shift), the mixer's two block-diagonal complex layers (real and imaginary weights and
    biases) and the MLP, and the bias-free head."""
    hidden, block = int(width * mlp_ratio), width // blocks
    mixer = 2 * (2 * blocks * block * block + 2 * blocks * block)
    per_block = 2 * 2 * width + mixer + (width * hidden + hidden) + (hidden * width + width)
    return (c_in * patch * patch * width + width) + tokens * width + depth * per_block + width * c_out * patch * patch


def test_fourcastnet_preset_has_the_paper_architecture_and_closed_form_parameter_count():
    with torch.device("meta"):  # no memory, no initialisation cost
        model = build("afno", in_channels=20, out_channels=20, preset="fourcastnet")
    config = model.config
    assert (config.grid_shape, config.patch_size, config.embed_dim, config.depth, config.num_blocks) == ((720, 1440), 8, 768, 12, 8)
    assert (config.mlp_ratio, config.sparsity_threshold, config.hard_thresholding_fraction) == (4.0, 0.01, 1.0)
    count = sum(p.numel() for p in model.parameters())
    assert count == _closed_form_parameters(20, 20, 8, 768, 12, 8, 4.0, tokens=90 * 180) == 74_690_304
    # NVlabs/FourCastNet's networks/afnonet.py counts 74,691,840: the same plus a LayerNorm it builds but never applies.
    small = build("afno", in_channels=2, out_channels=3, preset="small")
    assert sum(p.numel() for p in small.parameters()) == _closed_form_parameters(2, 3, 4, 128, 4, 8, 4.0, tokens=8 * 16)


def test_shapes_on_the_training_grid_and_on_odd_grids():
    model = build("afno", **TINY)
    eight = build("afno", **TINY, patch_size=8)
    with torch.no_grad():
        for net, shape in ((model, (32, 64)), (model, (33, 64)), (model, (17, 30)), (eight, (45, 90))):
            out = net(torch.randn(2, 2, *shape))
            assert out.shape == (2, 3, *shape) and torch.isfinite(out).all(), shape
    assert model.position_embedding_at(8, 16) is model.position_embedding  # the training grid: as learned
    assert model.position_embedding_at(9, 16).shape == (1, 32, 9, 16)


def test_odd_grids_are_padded_by_repeating_latitude_rows_and_wrapping_longitude():
    model = build("afno", **TINY, patch_size=8).eval()
    field = torch.randn(1, 2, 45, 90)  # pads to 48 x 96: 1 row south, 2 north, 6 columns wrapped around
    padded = torch.cat([field[:, :, :1], field, field[:, :, -1:], field[:, :, -1:]], dim=2)
    padded = torch.cat([padded, padded[..., :6]], dim=3)
    with torch.no_grad():
        assert torch.equal(model(field), model(padded)[:, :, 1:46, :90])


def test_gradients_reach_every_parameter_and_the_input():
    model = build("afno", **TINY)
    field = torch.randn(2, 2, 33, 64).requires_grad_()
    model(field).square().mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all() and param.grad.abs().sum() > 0, name
    assert field.grad.abs().sum() > 0


def test_bfloat16_autocast_keeps_the_fourier_modes_in_float32():
    model = build("afno", **TINY)
    field = torch.randn(1, 2, 32, 64)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(field)
        assert model.blocks[0].mixer.modes(torch.randn(1, 8, 16, 32, dtype=torch.bfloat16)).dtype == torch.complex64
    assert out.shape == (1, 3, 32, 64) and torch.isfinite(out).all()


def test_presets_and_json_options_rebuild_the_same_model():
    assert AFNOConfig(in_channels=1, out_channels=1) == AFNOConfig(in_channels=1, out_channels=1, **AFNO_PRESETS["small"])
    config = AFNOConfig(in_channels=1, out_channels=1, preset="tiny", depth=3, grid_shape=[16, 32])
    assert (config.depth, config.embed_dim, config.grid_shape) == (3, 32, (16, 32))  # overrides win, the rest is tiny
    model = build("afno", **TINY)
    name, options = config_of(model)
    assert name == "afno" and json.loads(json.dumps(options)) == options
    clone = build(name, **json.loads(json.dumps(options)))
    clone.load_state_dict(model.state_dict())
    field = torch.randn(1, 2, 33, 64)
    with torch.no_grad():
        assert torch.equal(clone(field), model(field))


def test_defaults_choose_a_patch_size_for_the_grid():
    assert defaults_for("afno", Grid.latlon(32, 64)) == {"grid_shape": (32, 64), "patch_size": 4}
    assert defaults_for("afno", Grid.latlon(721, 1440)) == {"grid_shape": (721, 1440), "patch_size": 8}
    assert defaults_for("afno", Grid.box(16, 32)) == {"grid_shape": (16, 32), "patch_size": 2}
    assert defaults_for("afno", Grid.bounded(9, 9)) == {"grid_shape": (9, 9), "patch_size": 1}
    # a named preset keeps its patch size; the positional embedding still fits the data's grid
    assert defaults_for("afno", Grid.latlon(721, 1440), {"preset": "fourcastnet"}) == {"grid_shape": (721, 1440)}
    assert defaults_for("afno", Grid.latlon(32, 64), {"patch_size": 2}) == {"grid_shape": (32, 64)}
    with pytest.raises(ConfigError) as err:
        defaults_for("afno", Grid.box(64))
    assert str(err.value) == "afno works on 2-D grids (boxes or lat-lon spheres), not on a 1-D 'box' grid"


BAD_OPTIONS = [
    (dict(embed_dim=100, num_blocks=8), "embed_dim (100) must be a multiple of num_blocks (8)"),
    (dict(hard_thresholding_fraction=0), "hard_thresholding_fraction must be a number in (0, 1], got 0"),
    (dict(hard_thresholding_fraction=1.5), "hard_thresholding_fraction must be a number in (0, 1], got 1.5"),
    (dict(patch_size=0), "patch_size must be a positive integer, got 0"),
    (dict(sparsity_threshold=-0.1), "sparsity_threshold must be a number >= 0, got -0.1"),
    (dict(mlp_ratio=float("nan")), "mlp_ratio must be a positive number, got nan"),
    (dict(mlp_ratio=0.01), "mlp_ratio 0.01 leaves no hidden units at embed_dim 32"),
    (dict(grid_shape=[32]), "grid_shape must be two positive integers (H, W), got [32]"),
    (dict(preset="large"), "preset must be one of 'fourcastnet', 'small', 'tiny', got 'large'"),
]


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_bad_options_raise_one_line_config_errors(options, message):
    with pytest.raises(ConfigError) as err:
        build("afno", in_channels=1, out_channels=1, **{"preset": "tiny", **options})
    assert str(err.value) == message


def test_bad_inputs_raise_a_config_error_naming_the_expected_shape():
    with pytest.raises(ConfigError) as err:
        build("afno", **TINY)(torch.zeros(1, 1, 32, 64))
    assert str(err.value) == "AFNO expects (batch, 2, H, W), got (1, 1, 32, 64)"


def _heat_pairs(count, first):
    """GRF ``u`` on the 2 pi-periodic 32 x 32 box and ``v = exp(0.03 Laplacian) u`` (heat flow to t = 0.03)."""
    grid = Grid.box(32, 32, lengths=2 * math.pi)
    u = gaussian_random_field(grid, count, seed=0, first_sample=first)  # (sample, y, x)
    k = wavenumbers(32, 2 * math.pi)
    v = torch.fft.ifft2(torch.fft.fft2(u) * torch.exp(-0.03 * (k[:, None] ** 2 + k[None, :] ** 2))).real
    coords = grid.coords()
    return xr.Dataset({"u": (("sample", "y", "x"), u.numpy().astype(np.float32)),
                       "v": (("sample", "y", "x"), v.numpy().astype(np.float32))}, coords=coords)


def test_fit_surrogate_trains_the_tiny_afno_on_heat_flow(tmp_path):
    config = TrainConfig(epochs=8, batch_size=8, lr=3e-2, seed=0, device="cpu", progress=False)
    surrogate, history = fit_surrogate(_heat_pairs(48, 0), inputs=["u"], outputs=["v"], model="afno",
                                       model_options={"preset": "tiny"}, config=config)
    assert surrogate.model_options["grid_shape"] == (32, 32)
    test = _heat_pairs(32, 1000)
    pred = surrogate.predict(test)
    error = float(rel_l2(torch.from_numpy(pred["v"].values), torch.from_numpy(test["v"].values)).mean())
    # Measured 0.314 (0.313-0.316 over TrainConfig seeds 0-2). Baselines: 1 for zero, 1.15 for the
    # input itself, 0.58 for the best multiple of the input.
    assert error < 0.4, error
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]  # measured 0.80 -> 0.30
    surrogate.save(tmp_path / "run")  # the options go through JSON and rebuild the same model
    loaded = Surrogate.load(tmp_path / "run")
    fields = torch.randn(2, 1, 33, 40)
    assert torch.equal(loaded.predict_tensor(fields, device="cpu"), surrogate.predict_tensor(fields, device="cpu"))
