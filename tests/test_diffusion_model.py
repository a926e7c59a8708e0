"""Function-space diffusion: EDM preconditioning, objectives as tasks of the one loop, samplers with a fixed budget.

The samplers are validated independently of training with exact Gaussian models (data and noise Gaussian random fields
diagonal in the same Fourier basis: the posterior mean is a per-mode Wiener filter, the flow-matching velocity a
per-mode linear field), by the exact flow map where the sampler is deterministic and by the per-mode variance of the
samples where it is not; a tiny trained model is then held to a spectrum bound at its training grid and at twice it.

These tensors are small (a few 10^4 values), where torch's intra-op threads only add synchronisation; on a 2-core
machine shared with other workers two threads made a training step 25x slower than one (2.4 s vs 0.09 s, measured),
so each test here runs on one thread. Nothing asserted depends on the thread count.
"""

import math
import subprocess
import sys

import pytest
import torch

from sciml import ConfigError, DataError, Grid
from sciml.diffusion import (DiffusionTask, EDMDenoiser, EDMLoss, FieldNetConfig, FlowMatchingLoss, GaussianDenoiser,
                             GaussianRandomField, GaussianVelocityField, NeuralVelocityField, VPLoss, edm_scalings,
                             edm_schedule, evaluations, sample_tensor)
from sciml.train import TrainConfig, fit, seed_everything

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _unit_noise(grid: Grid, *, alpha: float, tau: float, band_limit: int) -> GaussianRandomField:
    """A GRF scaled to pointwise variance 1 on ``grid``'s domain."""
    shape = GaussianRandomField(alpha=alpha, tau=tau, sigma=1.0, band_limit=band_limit)
    return GaussianRandomField(alpha=alpha, tau=tau, sigma=1 / math.sqrt(shape.pointwise_variance(grid)),
                               band_limit=band_limit)


def _modes(x: torch.Tensor, count: int) -> torch.Tensor:
    """Fourier coefficients ``k = 0 .. count - 1`` of 1-D fields ``(n, 1, points)``."""
    return torch.fft.rfft(x[:, 0].to(F64), norm="forward")[:, :count]


# 1-D box, 16 points, band limit 7: the noise and a smoother data distribution (a_k / b_k from 27 at k = 0 to 1.8 at 7)
BOX = Grid.box(16)
NOISE = GaussianRandomField(alpha=2.0, tau=3.0, sigma=1.0, band_limit=7)
DATA = GaussianRandomField(alpha=2.5, tau=3.0, band_limit=7)


# ------------------------------------------------------------------------------------------- the package
def test_importing_the_package_is_light_and_every_export_resolves():
    code = ("import sys, sciml.diffusion as d; heavy = [m for m in ('neuralop', 'torchdiffeq', 'sciml.train') "
            "if m in sys.modules]; [getattr(d, name) for name in d.__all__]; print(heavy, sorted(d.__all__) == dir(d))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "True"], out


# ------------------------------------------------------------------------------------------- preconditioning
def test_edm_scalings_hand_values_and_limits():
    # sigma = 1, sigma_data = 0.5, v = 4: effective level 2, total variance 0.25 + 4 = 4.25
    c_skip, c_out, c_in, c_noise = edm_scalings(torch.tensor(1.0, dtype=F64), sigma_data=0.5, noise_variance=4.0)
    assert math.isclose(c_skip, 1 / 17, rel_tol=1e-14)
    assert math.isclose(c_out, 1 / math.sqrt(4.25), rel_tol=1e-14)
    assert math.isclose(c_in, 1 / math.sqrt(4.25), rel_tol=1e-14)
    assert math.isclose(c_noise, math.log(2) / 4, rel_tol=1e-14)
    # v = 1 is EDM's Table 1; v rescales sigma to sigma sqrt(v)
    sigma = torch.tensor([1e-3, 0.2, 1.0, 80.0], dtype=F64)
    total = sigma**2 + 0.25
    edm = (0.25 / total, sigma * 0.5 / total.sqrt(), 1 / total.sqrt(), sigma.log() / 4)
    for ours, theirs in zip(edm_scalings(sigma, sigma_data=0.5, noise_variance=1.0), edm):
        torch.testing.assert_close(ours, theirs, rtol=1e-14, atol=0)
    for ours, theirs in zip(edm_scalings(sigma / 3, sigma_data=0.5, noise_variance=9.0), edm):
        torch.testing.assert_close(ours, theirs, rtol=1e-14, atol=1e-15)
    # sigma -> 0: c_skip -> 1, c_out -> 0 (the identity); sigma -> inf: c_skip -> 0, c_out -> sigma_data
    c_skip, c_out, _, _ = edm_scalings(torch.tensor([1e-9, 1e9], dtype=F64), sigma_data=0.7, noise_variance=0.3)
    assert abs(c_skip[0] - 1) < 1e-15 and c_out[0] < 1e-9 and c_skip[1] < 1e-15 and abs(c_out[1] - 0.7) < 1e-12
    # the EDM weight makes the target of F unit-variance pointwise: c_out^2 = (1 - c_skip)^2 sd^2 + c_skip^2 v sigma^2
    c_skip, c_out, _, _ = edm_scalings(sigma, sigma_data=0.7, noise_variance=0.3)
    torch.testing.assert_close(c_out**2, (1 - c_skip) ** 2 * 0.49 + c_skip**2 * 0.3 * sigma**2, rtol=1e-13, atol=0)


def test_the_denoiser_is_the_identity_at_vanishing_noise_and_the_same_function_on_every_grid():
    torch.manual_seed(0)
    domain = Grid.box(16, 16, lengths=(1.0, 2.0))
    noise = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=7)
    model = EDMDenoiser(domain=domain, noise=noise, channels=2, sigma_data=0.8,
                        network=FieldNetConfig(n_modes=(8, 8), hidden_channels=8, n_layers=2, embedding_channels=16,
                                               positional=True))
    with torch.no_grad():
        for p in model.parameters():  # the FiLM layers start at zero: give them weights, so sigma matters
            p.add_(0.1 * torch.randn_like(p))
        x = model.draw_noise(domain, 3, generator=_generator(0), device="cpu", dtype=torch.float32)
        assert float((model(x, 1e-7) - x).abs().max()) < 1e-6  # measured 1.5e-8
        assert float((model(x, 1.0) - x).abs().max()) > 0.1  # measured 0.23
        # the same band-limited function on 16 x 16 and 32 x 32: the denoised fields agree on the shared nodes
        fine = Grid.box(32, 32, lengths=(1.0, 2.0))
        y = model.draw_noise(fine, 3, generator=_generator(0), device="cpu", dtype=torch.float32)
        torch.testing.assert_close(y[..., ::2, ::2], x, atol=1e-5, rtol=0)
        coarse, refined = model(x, 0.5), model(y, 0.5)[..., ::2, ::2]
        assert float((coarse - refined).norm() / coarse.norm()) < 1e-4  # measured 6.5e-7


# ------------------------------------------------------------------------------------------- samplers, exact models
def _exact_denoiser() -> GaussianDenoiser:
    return GaussianDenoiser(data=DATA, domain=BOX, noise=NOISE)


@pytest.mark.parametrize(("sampler", "method", "order"), [("heun", "rk4", 2), ("ode", "rk4", 4), ("flow", "rk4", 4)])
def test_deterministic_samplers_follow_the_exact_flow_map_at_their_order(sampler, method, order):
    # For Gaussian data the flow maps each Fourier mode of the initial noise by an exact gain: sqrt(a / (a + s0^2 b))
    # from sigma_max to 0, sqrt((a + s_min^2 b) / (a + s0^2 b)) to sigma_min, sqrt(a / b) along the flow from t = 0
    # to 1.
    a, b = DATA.spectral_variance(BOX)[7:], NOISE.spectral_variance(BOX)[7:]
    model = GaussianVelocityField(data=DATA, domain=BOX, noise=NOISE) if sampler == "flow" else _exact_denoiser()
    start = 1.0 if sampler == "flow" else 80 * model.sigma_per_level
    end = 0.002 * model.sigma_per_level if sampler == "ode" else 0.0
    exact = (a / b).sqrt() if sampler == "flow" else ((a + end**2 * b) / (a + start**2 * b)).sqrt()
    initial = start * _modes(model.draw_noise(BOX, 8, generator=_generator(3), device="cpu", dtype=F64), 8)
    errors = []
    for steps in (16, 32):
        x = sample_tensor(model, BOX, 8, sampler="ode" if sampler == "flow" else sampler, steps=steps, method=method,
                   generator=_generator(3), dtype=F64)
        errors.append(float((_modes(x, 8) / initial / exact - 1).abs().max()))
    # measured: heun 0.108 -> 0.0231 (4.7x), ode rk4 8.3e-4 -> 5.4e-5 (15.4x), flow rk4 3.3e-5 -> 1.8e-6 (18x)
    assert errors[1] < {2: 0.03, 4: 1e-4}[order], errors
    assert errors[0] / errors[1] > {2: 3.5, 4: 12}[order], errors


@pytest.mark.parametrize(("sampler", "options", "bounds"), [
    ("heun", {"steps": 64}, (0.07, 0.03)),  # measured: max |r - 1| 0.016, |mean - 1| 0.006 (0.17, 0.15 at 18 steps)
    ("heun", {"steps": 64, "churn": 5.0}, (0.08, 0.04)),  # 0.043, 0.014
    ("euler_maruyama", {"steps": 256}, (0.13, 0.09)),  # 0.080, 0.057 (first order: 0.144 and 0.10 at 128 steps)
    ("ode", {"steps": 16}, (0.07, 0.03)),  # 0.014, 0.002 (0.036, 0.020 at 8 steps)
    ("flow", {"steps": 6}, (0.07, 0.03)),  # 0.014, 0.003
])
def test_samplers_with_the_exact_model_give_the_data_covariance_mode_by_mode(sampler, options, bounds):
    # Sample variance of |u_k|^2 over 4000 fields: relative standard error 1/sqrt(4000) = 1.6% per complex mode,
    # 2.2% for k = 0, 0.6% for the mean over the 8 modes. The bounds are the discretisation bias each sampler has at
    # this budget for these spectra plus >= 4 standard errors.
    if sampler == "flow":
        model, sampler = GaussianVelocityField(data=DATA, domain=BOX, noise=NOISE), "ode"
    else:
        model = _exact_denoiser()
    generator = _generator(1)
    x = torch.cat([sample_tensor(model, BOX, 2000, sampler=sampler, generator=generator, dtype=F64, **options)
                   for _ in range(2)])
    assert x.shape == (4000, 1, 16)
    ratio = _modes(x, 8).abs().pow(2).mean(dim=0) / DATA.spectral_variance(BOX)[7:]
    per_mode, mean = float((ratio - 1).abs().max()), float(ratio.mean() - 1)
    assert per_mode < bounds[0] and abs(mean) < bounds[1], ratio


def test_sampling_on_a_finer_grid_draws_the_same_functions():
    # The initial noise is the same function on every grid; the exact Wiener filter acts on it mode by mode, so the
    # samples on 32 points are those on 16 at the shared nodes (up to rounding), and 2-D works alike.
    for coarse, fine in ((BOX, Grid.box(32)), (Grid.box(16, 16), Grid.box(32, 32))):
        noise = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=7)
        model = GaussianDenoiser(data=GaussianRandomField(alpha=2.5, tau=3.0, band_limit=7), domain=coarse, noise=noise)
        x = sample_tensor(model, coarse, 4, steps=12, generator=_generator(2), dtype=F64)
        y = sample_tensor(model, fine, 4, steps=12, generator=_generator(2), dtype=F64)
        index = (..., *([slice(None, None, 2)] * coarse.ndim))
        torch.testing.assert_close(y[index], x, atol=1e-12, rtol=0)


# ------------------------------------------------------------------------------------------- budgets and errors
def _tiny_denoiser() -> EDMDenoiser:
    torch.manual_seed(0)
    return EDMDenoiser(domain=Grid.box(8, 8), noise=GaussianRandomField(alpha=2.0, tau=3.0, band_limit=3),
                       network=FieldNetConfig(n_modes=(4, 4), hidden_channels=4, n_layers=1, embedding_channels=8))


def _tiny_velocity() -> NeuralVelocityField:
    torch.manual_seed(0)
    return NeuralVelocityField(domain=Grid.box(8), noise=GaussianRandomField(alpha=2.0, tau=3.0, band_limit=3),
                               network=FieldNetConfig(n_modes=(4,), hidden_channels=4, n_layers=1,
                                                      embedding_channels=8))


@pytest.mark.parametrize(("sampler", "options", "expected"), [
    ("heun", {"steps": 5}, 9), ("heun", {"steps": 1}, 1), ("heun", {"steps": 4, "churn": 3.0}, 7),
    ("euler_maruyama", {"steps": 6}, 6), ("euler_maruyama", {"steps": 1}, 1),
    ("ode", {"steps": 3}, 12), ("ode", {"steps": 3, "method": "midpoint"}, 6),
    ("ode", {"steps": 5, "method": "euler"}, 5),
    ("flow", {"steps": 3}, 12), ("flow", {"steps": 4, "method": "midpoint"}, 8),
])
def test_each_sampler_calls_the_network_exactly_its_budget(sampler, options, expected):
    model = _tiny_velocity() if sampler == "flow" else _tiny_denoiser()
    sampler = "ode" if sampler == "flow" else sampler
    calls = []
    model.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape))
    grid = Grid.box(16) if model.domain.ndim == 1 else Grid.box(16, 16)  # twice the training grid
    x = sample_tensor(model, grid, 3, sampler=sampler, generator=_generator(0), **options)
    assert x.shape == (3, 1, *grid.shape) and x.dtype == torch.float32
    assert len(calls) == expected == evaluations(sampler, options["steps"], method=options.get("method", "rk4"))
    assert all(shape == x.shape for shape in calls)


def test_sampling_refuses_a_zero_budget_another_domain_nan_options_and_nan_weights():
    model = _tiny_denoiser()
    grid = Grid.box(8, 8)
    cases = [
        ({"steps": 0}, ConfigError, "budget"),
        ({"steps": -2}, ConfigError, "budget"),
        ({"sigma_min": float("nan")}, ConfigError, "sigma_min"),
        ({"sigma_max": 0.001}, ConfigError, "below sigma_max"),
        ({"churn": float("inf")}, ConfigError, "churn"),
        ({"sampler": "ode", "method": "dopri5"}, ConfigError, "fixed steps"),
        ({"sampler": "ddim"}, ConfigError, "does not apply"),
    ]
    for options, error, words in cases:
        with pytest.raises(error, match=words) as info:
            sample_tensor(model, grid, 2, generator=_generator(0), **options)
        assert "\n" not in str(info.value)
    for other in (Grid.box(8, 8, lengths=2.0), Grid.box(8), Grid.bounded(8, 8), Grid.latlon(8, 16)):
        with pytest.raises(ConfigError, match="lengths") as info:
            sample_tensor(model, other, 2, generator=_generator(0))
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="n must be"):
        sample_tensor(model, grid, 0)
    with pytest.raises(ConfigError, match="does not apply to a VelocityField"):
        sample_tensor(_tiny_velocity(), Grid.box(8), 2, sampler="heun")
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    with pytest.raises(DataError, match="non-finite") as info:
        sample_tensor(model, grid, 2, steps=2, generator=_generator(0))
    assert "\n" not in str(info.value)


def test_the_schedule_is_karras_eq_5():
    levels = edm_schedule(18)
    assert levels.dtype == F64 and levels.shape == (18,)
    assert math.isclose(levels[0], 80.0, rel_tol=1e-14) and math.isclose(levels[-1], 0.002, rel_tol=1e-12)
    i = 5  # by hand: (80^(1/7) + 5/17 (0.002^(1/7) - 80^(1/7)))^7
    by_hand = (80 ** (1 / 7) + i / 17 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert math.isclose(levels[i], by_hand, rel_tol=1e-14) and bool((levels.diff() < 0).all())


# ------------------------------------------------------------------------------------------- objectives and the task
class _Scaled(GaussianDenoiser):
    """The exact posterior mean times ``factor``."""

    def __init__(self, factor, **options):
        super().__init__(**options)
        self.factor = factor

    def forward(self, x, sigma):
        return self.factor * super().forward(x, sigma)


class _ScaledVelocity(GaussianVelocityField):
    def __init__(self, factor, **options):
        super().__init__(**options)
        self.factor = factor

    def forward(self, x, t):
        return self.factor * super().forward(x, t)


@pytest.mark.parametrize("objective", [EDMLoss(), VPLoss(), FlowMatchingLoss()], ids=["edm", "vp", "flow"])
def test_each_objective_is_minimised_by_the_exact_model_and_leaves_the_global_rng_alone(objective):
    # The objectives' minimiser is the posterior mean (velocity): scaling the exact model by 0.75 or 1.25 raises the
    # loss. With the same generator state for each (common random numbers) the difference is (c - 1)^2 E|D|^2 plus a
    # cross term whose mean is 0: measured gaps (L(0.75) - L(1), L(1.25) - L(1)) of 1.95, 2.01 (edm), 0.82, 0.95 (vp),
    # 0.0137, 0.0154 (flow), >= 12x the cross term's size (0.031, 0.065, 0.0008).
    clean = DATA.sample(BOX, 1000, generator=_generator(4), dtype=F64)[:, None]
    scaled = _ScaledVelocity if isinstance(objective, FlowMatchingLoss) else _Scaled
    losses = {}
    for factor in (0.75, 1.0, 1.25):
        model = scaled(factor, data=DATA, domain=BOX, noise=NOISE)
        rng = torch.get_rng_state()
        loss, _ = objective.loss(model, model, clean, generator=_generator(5))
        assert torch.equal(torch.get_rng_state(), rng)  # the task's generator is the only randomness
        losses[factor] = float(loss)
    assert losses[1.0] < min(losses[0.75], losses[1.25]), losses
    # the noise draws are the generator's: the same state, the same loss
    model = scaled(1.0, data=DATA, domain=BOX, noise=NOISE)
    assert float(objective.loss(model, model, clean, generator=_generator(5))[0]) == losses[1.0]


def _task(objective: str, seed: int = 0) -> DiffusionTask:
    seed_everything(seed)
    domain, noise = Grid.box(8, 8), GaussianRandomField(alpha=2.0, tau=3.0, band_limit=3)
    network = FieldNetConfig(n_modes=(4, 4), hidden_channels=4, n_layers=1, embedding_channels=8)
    if objective == "flow":
        return DiffusionTask(NeuralVelocityField(domain=domain, noise=noise, network=network), ema_decay=0.9)
    model = EDMDenoiser(domain=domain, noise=noise, network=network)
    return DiffusionTask(model, objective=VPLoss() if objective == "vp" else EDMLoss(), ema_decay=0.9)


class _Crash(Exception):
    pass


@pytest.mark.parametrize(("objective", "crash"), [("edm", 7), ("vp", 7), ("flow", 7), ("edm", 11)])
def test_a_killed_and_resumed_run_is_bitwise_the_uninterrupted_one(tmp_path, objective, crash):
    # 12 steps (2 epochs of 6); checkpoints at the end of each epoch and every 4 steps. A crash in step 7 resumes from
    # the checkpoint at step 6 = N/2 (an epoch's end), one in step 11 from the one at step 8 (mid-epoch).
    fields = GaussianRandomField(alpha=2.5, tau=3.0, band_limit=3).sample(Grid.box(8, 8), 24, generator=_generator(6))
    data = (fields[:, None],)
    val = (data[0][:8],)
    config = TrainConfig(epochs=2, batch_size=4, lr=3e-3, device="cpu", progress=False, checkpoint_every=4)

    straight = _task(objective)
    history = fit(straight, data, val_data=val, config=config)
    assert len(history) == 2 and int(straight.ema.n_averaged) == 12  # one EMA update after each step

    crashing = _task(objective)
    loss, steps = crashing.loss, []

    def loss_then_crash(model, batch):
        steps.append(1)
        if len(steps) == crash:
            raise _Crash
        return loss(model, batch)

    crashing.loss = loss_then_crash
    with pytest.raises(_Crash):
        fit(crashing, data, val_data=val, config=config, checkpoint_dir=tmp_path)
    torch.manual_seed(123)  # the resumed run must not depend on the global RNG it finds
    resumed = _task(objective, seed=7)  # other initial weights: all of them come from the checkpoint
    again = fit(resumed, data, val_data=val, config=config, checkpoint_dir=tmp_path, resume=True)

    def without_times(records):
        return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in records]

    assert without_times(again) == without_times(history)
    for mine, theirs in ((resumed.model.state_dict(), straight.model.state_dict()),
                         (resumed.ema.state_dict(), straight.ema.state_dict())):
        assert mine.keys() == theirs.keys()
        for key in mine:
            assert torch.equal(mine[key], theirs[key]), key
    assert torch.equal(resumed.generator.get_state(), straight.generator.get_state())
    assert torch.equal(resumed.validation_generator.get_state(), straight.validation_generator.get_state())


def test_the_task_refuses_a_mismatched_objective_and_bad_options():
    denoiser = _task("edm").model
    with pytest.raises(ConfigError, match="FlowMatchingLoss trains a VelocityField"):
        DiffusionTask(denoiser, objective=FlowMatchingLoss())
    with pytest.raises(ConfigError, match="ema_decay"):
        DiffusionTask(denoiser, ema_decay=1.0)
    with pytest.raises(ConfigError, match="Denoiser or a VelocityField"):
        DiffusionTask(torch.nn.Linear(2, 2))
    with pytest.raises(ConfigError, match="p_std"):
        EDMLoss(p_std=float("nan"))
    with pytest.raises(ConfigError, match="beta_max"):
        VPLoss(beta_min=5.0, beta_max=1.0)
    task = DiffusionTask(denoiser)
    with pytest.raises(ConfigError, match=r"\(batch, 1, \*space\) with 2 spatial dims"):
        task.loss(denoiser, (torch.zeros(4, 1, 8),))


# ------------------------------------------------------------------------------------------- a tiny trained model
def test_a_tiny_edm_model_learns_a_spectrum_and_samples_it_at_twice_its_grid():
    # Data: a GRF whose spectrum differs from the noise's (a_k / b_k from 0.53 at k = 0 to 0.13 at k = 8, in 1-D, 32
    # points). With F = 0 the denoiser is c_skip x, exact for data of the noise's spectral shape, whose band ratios to
    # the data's are 0.88, 1.83, 2.53, 3.14 (the bands below); the untrained model samples 1.01, 2.15, 3.47, 3.39.
    grid, band_limit = Grid.box(32), 8
    noise = _unit_noise(grid, alpha=1.0, tau=3.0, band_limit=band_limit)
    data = GaussianRandomField(alpha=1.25, tau=3.0, band_limit=band_limit)
    fields = data.sample(grid, 1024, generator=_generator(0), dtype=torch.float32)[:, None]
    seed_everything(0)
    model = EDMDenoiser(domain=grid, noise=noise, sigma_data=math.sqrt(data.pointwise_variance(grid)),
                        network=FieldNetConfig(n_modes=(2 * band_limit + 2,), hidden_channels=16, n_layers=2,
                                               embedding_channels=32))
    task = DiffusionTask(model, objective=EDMLoss(), ema_decay=0.98)
    history = fit(task, (fields,), config=TrainConfig(epochs=8, batch_size=64, lr=5e-3, warmup_fraction=0.05,
                                                      device="cpu", progress=False))  # 128 steps
    assert history.stop_reason == "epochs"

    bands = [(0, 2), (2, 4), (4, 6), (6, band_limit + 1)]
    variance = data.spectral_variance(grid)[band_limit:]

    def band_energies(x):
        energy = _modes(x, band_limit + 1).abs().pow(2).mean(dim=0)
        return torch.stack([energy[i:j].sum() for i, j in bands])

    data_bands = torch.stack([variance[i:j].sum() for i, j in bands])
    exact = GaussianDenoiser(data=data, domain=grid, noise=noise)
    reference = band_energies(sample_tensor(exact, grid, 256, steps=32, generator=_generator(5), dtype=F64))
    samples = {}
    for points in (32, 64):  # the training grid and twice it: the same weights, the same noise functions
        x = sample_tensor(task.ema.module, Grid.box(points), 256, steps=32, generator=_generator(5))
        samples[points] = x
        energies = band_energies(x)
        # Against the data: measured 1.11, 1.05, 1.10, 1.13 at both resolutions (256 samples: 3-4% standard error per
        # band; Heun with 32 steps adds ~4% on this spectrum, see the exact-model tests).
        to_data = (energies / data_bands).tolist()
        assert all(0.8 < r < 1.3 for r in to_data), (points, to_data)
        # Against the exact posterior mean sampled from the same noise by the same sampler, where the sampling error and
        # most of the discretisation error cancel: measured 1.01, 1.06, 1.05, 1.06.
        to_exact = (energies / reference).tolist()
        assert all(0.9 < r < 1.15 for r in to_exact), (points, to_exact)
    coarse, fine = samples[32], samples[64][..., ::2]
    assert float((fine - coarse).norm() / coarse.norm()) < 1e-3  # measured 1.8e-5
