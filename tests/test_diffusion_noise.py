"""Trace-class noise on functions (sciml.diffusion.noise): covariance, resolution consistency, randomness."""

import math

import numpy as np
import pytest
import torch
from scipy.special import sph_harm_y

from sciml import ConfigError, Grid, GridError
from sciml.diffusion import GaussianRandomField, MaternField, synthesize
from sciml.diffusion import noise as noise_module

F64 = torch.float64


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _identity_check(cov: np.ndarray) -> tuple[float, float]:
    """Largest deviations of the diagonal from 1 and of the off-diagonal from 0 of a normalised covariance."""
    off = cov - np.diag(np.diag(cov))
    return float(np.abs(np.diag(cov) - 1).max()), float(np.abs(off).max())


# ------------------------------------------------------------------------------------ covariance of the modes
def test_box_mode_covariance_matches_the_eigenvalues():
    # Anisotropic 2-D box resolving the band limit: the grid's FFT gives the drawn Fourier coefficients.
    grid = Grid.box(16, 16, lengths=(1.0, 2.0))
    b, samples = 5, 4000
    noise = GaussianRandomField(alpha=2.0, tau=3.0, sigma=1.0, band_limit=b)
    u = noise.sample(grid, samples, generator=_generator(0), dtype=F64)
    spectrum = torch.fft.fftn(u, dim=(1, 2)) / 256
    k = torch.arange(-b, b + 1) % 16
    modes = spectrum[:, k][:, :, k].reshape(samples, -1)  # (samples, (2b + 1)^2) in the noise's C order
    torch.testing.assert_close(modes.reshape(samples, 2 * b + 1, 2 * b + 1),
                               noise.coefficients(grid, samples, generator=_generator(0)), atol=1e-13, rtol=0)
    outside = spectrum.clone()
    outside[:, k[:, None], k[None, :]] = 0
    assert float(outside.abs().max()) < 1e-13  # nothing above the band limit

    variance = noise.spectral_variance(grid).reshape(-1).numpy()  # E|u_k|^2 = lambda_k / |D|
    np.testing.assert_allclose(variance, noise.eigenvalues(grid).reshape(-1).numpy() / 2.0, rtol=1e-14)
    centre = variance.size // 2  # k = 0; flat index i <-> -k at size - 1 - i, so [centre + 1:] is a half space
    half = modes[:, centre + 1:].numpy()
    real = np.concatenate([modes[:, centre:centre + 1].real.numpy() / math.sqrt(variance[centre]),
                           half.real / np.sqrt(variance[centre + 1:] / 2),
                           half.imag / np.sqrt(variance[centre + 1:] / 2)], axis=1)  # 121 real dofs, unit variance
    assert float(modes[:, centre].imag.abs().max()) < 1e-14
    cov = real.T @ real / samples
    # Sampling error of a unit-variance covariance entry: sqrt(2/N) = 0.022 (diagonal), 1/sqrt(N) = 0.016 (off);
    # the bounds are >= 5.5 and 6 standard errors (~7000 pairs: the largest of them is ~4.3 standard errors).
    diagonal, off = _identity_check(cov)
    assert diagonal < 0.12 and off < 0.1, (diagonal, off)


def test_sphere_mode_covariance_matches_the_eigenvalues():
    th = pytest.importorskip("torch_harmonics")
    b, samples = 7, 4000
    grid = Grid.latlon(16, 32, nodes="legendre-gauss")  # Gauss-Legendre analysis is exact to degree 15 >= b
    noise = GaussianRandomField(alpha=1.5, tau=2.0, sigma=1.0, band_limit=b)
    u = noise.sample(grid, samples, generator=_generator(1), dtype=F64)
    sht = th.RealSHT(16, 32, lmax=b + 1, mmax=b + 1, grid="legendre-gauss", csphase=False).to(F64)
    a = sht(u.flip(-2))  # torch-harmonics' latitude order is descending
    torch.testing.assert_close(a, noise.coefficients(grid, samples, generator=_generator(1)), atol=1e-13, rtol=0)

    eigen = noise.eigenvalues(grid).numpy()  # (b + 1,) per degree
    variance = noise.spectral_variance(grid).numpy()  # (l, m): lambda_l for m <= l
    np.testing.assert_allclose(variance, np.tril(np.repeat(eigen[:, None], b + 1, axis=1)), rtol=1e-14)
    l, m = np.tril_indices(b + 1)
    zonal, rest = m == 0, m > 0
    an = a.numpy()
    assert float(np.abs(an[:, l[zonal], 0].imag).max()) < 1e-14
    real = np.concatenate([an[:, l[zonal], 0].real / np.sqrt(eigen[l[zonal]]),
                           an[:, l[rest], m[rest]].real / np.sqrt(eigen[l[rest]] / 2),
                           an[:, l[rest], m[rest]].imag / np.sqrt(eigen[l[rest]] / 2)], axis=1)  # 64 real dofs
    cov = real.T @ real / samples
    diagonal, off = _identity_check(cov)  # tolerances as on the box (~2000 pairs)
    assert diagonal < 0.12 and off < 0.1, (diagonal, off)


# ------------------------------------------------------------------------------------ pointwise variance
GRIDS = [Grid.box(24), Grid.box(16, 12, lengths=(1.0, 3.0)), Grid.latlon(17, 32), Grid.latlon(12, 24, nodes="legendre-gauss"),
         Grid.box(8, 8)]  # the last cannot resolve band_limit=6: aliased point values keep the variance


@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: f"{g.kind}{g.shape}{g.nodes or ''}")
@pytest.mark.parametrize("noise", [GaussianRandomField(alpha=1.6, tau=2.0, sigma=1.0, band_limit=6),
                                   MaternField(nu=0.5, length_scale=0.3, variance=2.0, band_limit=6, mean_zero=True)],
                         ids=["grf", "matern"])
def test_the_karhunen_loeve_normalisation_is_the_trace_formula_at_every_node(grid, noise):
    # Exact, not statistical: the field is linear in the normals, u = A xi, so Var u(x) = sum_j A[x, j]^2.
    domain = noise_module._domain(grid)
    used = noise._used_normals(domain)
    basis = synthesize(noise._from_normals(torch.eye(used, dtype=F64), domain), grid, dtype=F64)  # (used, *shape)
    exact = basis.square().sum(dim=0)
    trace = noise.pointwise_variance(grid)
    if grid.kind == "box":
        expected = float(noise.eigenvalues(grid).sum()) / math.prod(grid.lengths)
    else:
        degree = torch.arange(noise.band_limit + 1, dtype=F64)
        expected = float(((2 * degree + 1) / (4 * math.pi) * noise.eigenvalues(grid)).sum())
    assert trace == pytest.approx(expected, rel=1e-14)
    torch.testing.assert_close(exact, torch.full_like(exact, trace), rtol=1e-12, atol=0)  # poles included


@pytest.mark.parametrize("grid", [Grid.box(32, 32), Grid.latlon(33, 64), Grid.latlon(32, 64, nodes="legendre-gauss")],
                         ids=["box", "equiangular", "legendre-gauss"])
def test_sampled_pointwise_variance_matches_the_trace_formula(grid):
    samples = 4000
    noise = GaussianRandomField(alpha=2.0, tau=3.0, sigma=1.0, band_limit=12)
    u = noise.sample(grid, samples, generator=_generator(2), dtype=F64)
    trace = noise.pointwise_variance(grid)
    rows = u.square().mean(dim=(0, 2)) / trace  # per latitude (per y on the box), poles included
    # One point's variance estimate has relative standard error sqrt(2/N) = 0.022; averages over a row are no
    # worse: 0.12 is 5.4 of them. A wrong m = 0 vs m > 0 normalisation is off by up to 2x (at the poles).
    assert float((rows - 1).abs().max()) < 0.12, rows
    assert abs(float(u.mean())) < 0.12 * math.sqrt(trace)


# ------------------------------------------------------------------------------------ resolution consistency
@pytest.mark.parametrize("shape", [(32,), (32, 32)])
def test_same_generator_state_gives_the_same_function_on_every_box_grid(shape):
    noise = GaussianRandomField(alpha=1.5, tau=4.0, band_limit=24)
    fields = {scale: noise.sample(Grid.box(*(scale * n // 32 for n in shape)), 3, generator=_generator(4), dtype=F64)
              for scale in (16, 32, 64, 128)}  # 16 points cannot resolve B = 24: aliased point values

    def index(step: int) -> tuple:  # every step-th point per axis
        return (slice(None),) + (slice(None, None, step),) * len(shape)

    for scale, field in fields.items():
        torch.testing.assert_close(field, fields[128][index(128 // scale)], atol=1e-13, rtol=0)
    # The series evaluated directly at some points of the 64-point grid.
    coefficients = noise.coefficients(Grid.box(*shape), 3, generator=_generator(4)).numpy()
    k = np.arange(-24, 25)
    for point in [(0,) * len(shape), (5,) * len(shape), (17, 40)[: len(shape)]]:
        x = np.array(point) / 64.0
        phase = np.exp(2j * np.pi * k * x[-1])
        if len(shape) == 2:
            phase = np.exp(2j * np.pi * k * x[0])[:, None] * phase[None, :]
        direct = np.real(np.sum(coefficients * phase, axis=tuple(range(1, len(shape) + 1))))
        np.testing.assert_allclose(fields[64][(slice(None), *point)].numpy(), direct, atol=1e-13)
    assert float((fields[64][index(2)] - fields[32]).abs().max()) < 1e-13
    assert float(fields[128].std()) > 0.1 * math.sqrt(noise.pointwise_variance(Grid.box(*shape)))  # not trivially 0


def _sphere_series(a: np.ndarray, grid: Grid) -> np.ndarray:
    """The real SH series at ``grid``'s nodes from scipy's harmonics (Condon-Shortley phase removed)."""
    c = grid.coords()
    theta, phi = np.radians(90.0 - c["lat"]), np.radians(c["lon"])
    degrees = a.shape[-1]
    out = np.zeros((a.shape[0], *grid.shape))
    for m in range(degrees):
        legendre = np.stack([sph_harm_y(l, m, theta, 0.0).real * (-1) ** m for l in range(m, degrees)])  # (l, lat)
        profile = np.einsum("nl,lk->nk", a[:, m:, m], legendre)  # (n, lat)
        out += (1 if m == 0 else 2) * np.real(profile[:, :, None] * np.exp(1j * m * phi)[None, None, :])
    return out


def test_same_generator_state_gives_the_same_function_on_every_sphere_grid():
    th = pytest.importorskip("torch_harmonics")
    b = 15
    noise = MaternField(nu=1.0, length_scale=0.3, band_limit=b)
    a = noise.coefficients(Grid.latlon(8, 16), 2, generator=_generator(5))
    grids = [Grid.latlon(32, 64), Grid.latlon(64, 128), Grid.latlon(32, 64, nodes="legendre-gauss"),
             Grid.latlon(64, 128, nodes="legendre-gauss"), Grid.latlon(12, 24, nodes="legendre-gauss")]
    fields = {grid: noise.sample(grid, 2, generator=_generator(5), dtype=F64) for grid in grids}
    for grid, field in fields.items():  # the same continuous function at each grid's own nodes
        np.testing.assert_allclose(field.numpy(), _sphere_series(a.numpy(), grid), atol=1e-13)
        torch.testing.assert_close(field, synthesize(a, grid, dtype=F64), atol=0, rtol=0)
    # Spectral interpolation: the forward SHT of each resolving grid returns the coefficients drawn.
    for grid in grids[:4]:
        assert noise.resolves(grid)
        sht = th.RealSHT(*grid.shape, lmax=b + 1, mmax=b + 1, grid=grid.nodes, csphase=False).to(F64)
        torch.testing.assert_close(sht(fields[grid].flip(-2)), a, atol=1e-13, rtol=0)
    assert not noise.resolves(grids[4])  # 24 longitudes alias m = 12..15, yet the node values are exact (above)
    # Equiangular grids that share nodes agree there.
    coarse = noise.sample(Grid.latlon(17, 32), 2, generator=_generator(5), dtype=F64)
    fine = noise.sample(Grid.latlon(33, 64), 2, generator=_generator(5), dtype=F64)
    torch.testing.assert_close(coarse, fine[:, ::2, ::2], atol=1e-13, rtol=0)


# ------------------------------------------------------------------------------------ randomness
@pytest.mark.parametrize("grid", [Grid.box(16, 16), Grid.latlon(16, 32)], ids=["box", "sphere"])
def test_the_generator_is_the_only_randomness(grid):
    noise = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=7)
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()
    first = noise.sample(grid, 4, generator=_generator(11))
    assert torch.equal(torch.random.get_rng_state(), torch_state)  # the global generators are untouched
    after = np.random.get_state()
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1]) and after[2:] == numpy_state[2:]
    assert torch.equal(noise.sample(grid, 4, generator=_generator(11)), first)  # same seed, same bytes
    assert not torch.equal(noise.sample(grid, 4, generator=_generator(12)), first)

    generator = _generator(11)
    noise.sample(grid, 4, generator=generator)
    state = generator.get_state()  # what a training checkpoint stores
    following = noise.sample(grid, 3, generator=generator)
    resumed = torch.Generator()
    resumed.set_state(state)
    assert torch.equal(noise.sample(grid, 3, generator=resumed), following)
    assert torch.equal(resumed.get_state(), generator.get_state())
    # The draw does not depend on the grid: sampling on another resolution advances the generator alike.
    other = grid.with_shape(*(2 * n for n in grid.shape))
    resumed.set_state(state)
    noise.sample(other, 3, generator=resumed)
    assert torch.equal(resumed.get_state(), generator.get_state())
    per_sample = noise.normals_per_sample(grid)
    assert per_sample % 16 == 0 and per_sample == noise.normals_per_sample(other)


@pytest.mark.parametrize("grid", [Grid.box(20), Grid.box(16, 16), Grid.latlon(16, 32, nodes="legendre-gauss")],
                         ids=["box1d", "box2d", "sphere"])
def test_a_batch_is_the_samples_drawn_one_after_another_on_cpu(grid):
    noise = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=5)
    batched_generator, single_generator = _generator(21), _generator(21)
    batch = noise.coefficients(grid, 5, generator=batched_generator)
    single = torch.cat([noise.coefficients(grid, 1, generator=single_generator) for _ in range(5)])
    assert torch.equal(batch, single)  # the normals per sample are padded to whole blocks of 16
    assert torch.equal(batched_generator.get_state(), single_generator.get_state())
    fields = noise.sample(grid, 5, generator=_generator(21), dtype=F64)
    one_by_one = torch.cat([synthesize(single[i:i + 1], grid, dtype=F64) for i in range(5)])
    torch.testing.assert_close(fields, one_by_one, atol=1e-15, rtol=0)  # the transform: batched vs single rounding


def test_mean_zero_drops_only_the_constant():
    full = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=7)
    zero = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=7, mean_zero=True)
    for grid in (Grid.box(16, 16, lengths=(1.0, 2.0)), Grid.box(16), Grid.latlon(16, 32, nodes="legendre-gauss"),
                 Grid.latlon(17, 32)):
        u0 = zero.sample(grid, 4, generator=_generator(8), dtype=F64)
        u = full.sample(grid, 4, generator=_generator(8), dtype=F64)
        weights = grid.quadrature_weights()
        mean = (u0 * weights).sum(dim=tuple(range(1, grid.ndim + 1))) / weights.sum()
        assert float(mean.abs().max()) < 1e-15, mean  # exact quadrature of a resolved band-limited field
        difference = u - u0  # the same draws: only the constant mode differs
        torch.testing.assert_close(difference, difference.mean(dim=tuple(range(1, grid.ndim + 1)), keepdim=True)
                                   .expand_as(difference), atol=1e-14, rtol=0)
        assert float(difference.abs().max()) > 1e-3
        eigen = zero.eigenvalues(grid).reshape(-1)
        assert float(eigen[0 if grid.kind == "latlon" else eigen.numel() // 2]) == 0.0  # l = 0 or k = 0
        assert zero.pointwise_variance(grid) < full.pointwise_variance(grid)


def test_dtype_and_device_options():
    noise = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=7)
    for grid in (Grid.box(16, 16), Grid.latlon(16, 32)):
        reference = noise.sample(grid, 3, generator=_generator(9), dtype=F64)
        single = noise.sample(grid, 3, generator=_generator(9), dtype=torch.float32, device="cpu")
        assert single.dtype == torch.float32 and single.device.type == "cpu" and single.shape == (3, *grid.shape)
        torch.testing.assert_close(single.double(), reference, atol=1e-6 * float(reference.abs().max()), rtol=0)
        assert noise.sample(grid, 2, generator=_generator(9)).dtype == torch.get_default_dtype()
        assert noise.sample(grid, 2, generator=_generator(9), dtype=torch.bfloat16).dtype == torch.bfloat16
        coefficients = noise.coefficients(grid, 3, generator=_generator(9), device=torch.device("cpu"))
        assert coefficients.dtype == torch.complex128
        torch.testing.assert_close(synthesize(coefficients, grid, dtype=F64), reference, atol=0, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_noise_is_reproducible_and_a_cpu_generator_gives_the_cpu_noise():
    noise = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=15)
    for grid in (Grid.box(64, 64), Grid.latlon(32, 64)):
        cpu = noise.sample(grid, 4, generator=_generator(3), dtype=F64)
        moved = noise.sample(grid, 4, generator=_generator(3), device="cuda", dtype=F64)
        assert moved.device.type == "cuda"
        torch.testing.assert_close(moved.cpu(), cpu, atol=1e-12, rtol=0)
        on_device = torch.Generator(device="cuda").manual_seed(3)
        first = noise.sample(grid, 4, generator=on_device)
        assert first.device.type == "cuda"
        assert torch.equal(noise.sample(grid, 4, generator=torch.Generator(device="cuda").manual_seed(3)), first)


# ------------------------------------------------------------------------------------ Matérn
def test_matern_is_the_power_law_with_the_matern_spectral_density():
    nu, ell, variance = 1.5, 0.1, 2.0
    box = Grid.box(64)
    matern = MaternField(nu=nu, length_scale=ell, variance=variance, band_limit=400)
    # lambda_k = S(k / L) (Rasmussen & Williams eq. 4.15): the power law alpha = nu + 1/2, tau^2 = 2 nu / l^2.
    amplitude = variance * 2 * math.sqrt(math.pi) * math.gamma(nu + 0.5) * (2 * nu) ** nu / (math.gamma(nu) * ell ** (2 * nu))
    same = GaussianRandomField(alpha=nu + 0.5, tau=math.sqrt(2 * nu) / ell, sigma=math.sqrt(amplitude), band_limit=400)
    torch.testing.assert_close(matern.eigenvalues(box), same.eigenvalues(box), rtol=1e-12, atol=0)
    # Its covariance is the periodised Matérn-3/2 kernel sum_n (1 + sqrt(3) r / l) exp(-sqrt(3) r / l), r = |x + n|.
    x = np.linspace(0.0, 0.5, 11)
    k = np.arange(-400, 401)
    spectral = (matern.eigenvalues(box).numpy()[None, :] * np.cos(2 * np.pi * k[None, :] * x[:, None])).sum(axis=1)
    r = np.abs(x[:, None] + np.arange(-3, 4)[None, :])
    kernel = variance * ((1 + math.sqrt(3) * r / ell) * np.exp(-math.sqrt(3) * r / ell)).sum(axis=1)
    np.testing.assert_allclose(spectral, kernel, rtol=0, atol=1e-6 * variance)  # the tail above k = 400: 3e-7
    assert matern.pointwise_variance(box) == pytest.approx(variance, rel=1e-6)
    # 2-D box and the sphere (normalised to the untruncated field): the variance is `variance` once resolved.
    assert MaternField(nu=nu, length_scale=ell, variance=variance, band_limit=200).pointwise_variance(
        Grid.box(8, 8)) == pytest.approx(variance, rel=1e-4)
    sphere = Grid.latlon(8, 16)
    assert MaternField(nu=nu, length_scale=0.2, variance=variance, band_limit=2000).pointwise_variance(
        sphere) == pytest.approx(variance, rel=1e-7)
    # What B = 60 leaves out is the tail sum_{l > B} (2 l + 1) / (4 pi) lambda_l ~ c / (4 pi nu) u^(-nu) (midpoint rule).
    truncated = MaternField(nu=nu, length_scale=0.2, variance=variance, band_limit=60)
    tau2, degree = 2 * nu / 0.2**2, torch.arange(61, dtype=F64)
    c = float(truncated.eigenvalues(sphere)[0]) * tau2 ** (nu + 1)
    tail = c / (4 * math.pi * nu) * (60.5 * 61.5 + tau2) ** (-nu)
    assert tail / variance > 1e-3  # the check below is not trivial
    assert truncated.pointwise_variance(sphere) + tail == pytest.approx(variance, rel=1e-6)
    assert float(((2 * degree + 1) / (4 * math.pi) * truncated.eigenvalues(sphere)).sum()) == pytest.approx(
        truncated.pointwise_variance(sphere), rel=1e-14)
    # On the sphere it is the power law alpha = nu + 1, tau^2 = 2 nu / l^2 with the radius in the Laplacian.
    on_earth = MaternField(nu=nu, length_scale=2.0e5, variance=variance, band_limit=40, radius=6.4e6)
    degree = torch.arange(41, dtype=F64)
    shape = (degree * (degree + 1) / 6.4e6**2 + 2 * nu / 2.0e5**2) ** (-(nu + 1))
    ratio = on_earth.eigenvalues(sphere) / shape
    torch.testing.assert_close(ratio, ratio[:1].expand_as(ratio), rtol=1e-12, atol=0)


# ------------------------------------------------------------------------------------ bad input
def _one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


def test_bad_input_gives_a_one_line_error():
    grf = GaussianRandomField(alpha=0.75, tau=3.0)  # trace class in 1-D, not in 2-D or on the sphere
    assert grf.sample(Grid.box(16), 1, generator=_generator(0)).shape == (1, 16)
    for grid in (Grid.box(16, 16), Grid.latlon(16, 32)):
        generator = _generator(0)
        state = generator.get_state()
        with pytest.raises(ConfigError, match="trace-class") as error:
            grf.sample(grid, 1, generator=generator)
        assert "d/2 = 1" in _one_line(error)
        assert torch.equal(generator.get_state(), state)  # refused before drawing
    with pytest.raises(ConfigError, match="alpha") as error:
        GaussianRandomField(alpha=0.5)
    _one_line(error)
    for options in ({"tau": 0.0}, {"tau": -1.0}, {"tau": float("nan")}, {"sigma": -1.0}, {"sigma": float("inf")},
                    {"alpha": float("inf")}, {"band_limit": 0}, {"band_limit": 3.5}, {"band_limit": True},
                    {"mean_zero": 1}, {"radius": 0.0}, {"alpha": "2"}):
        with pytest.raises(ConfigError) as error:
            GaussianRandomField(**options)
        assert next(iter(options)) in _one_line(error)
    for options in ({"nu": 0.0}, {"length_scale": -0.1}, {"variance": 0.0}, {"nu": float("nan")}):
        with pytest.raises(ConfigError) as error:
            MaternField(**options)
        assert next(iter(options)) in _one_line(error)

    noise = GaussianRandomField(band_limit=4)
    with pytest.raises(GridError, match="periodic") as error:
        noise.sample(Grid.bounded(16, 16), 1, generator=_generator(0))
    _one_line(error)
    with pytest.raises(GridError) as error:
        noise.sample("64x64", 1)
    _one_line(error)
    for n in (0, -2, 2.0, True):
        with pytest.raises(ConfigError, match="n must be an integer >= 1") as error:
            noise.sample(Grid.box(16, 16), n, generator=_generator(0))
        _one_line(error)
    with pytest.raises(ConfigError, match="generator") as error:
        noise.sample(Grid.box(16), 1, generator=0)
    _one_line(error)
    with pytest.raises(ConfigError, match="dtype") as error:
        noise.sample(Grid.box(16), 1, generator=_generator(0), dtype=torch.int64)
    _one_line(error)
    with pytest.raises(ConfigError, match="coefficients") as error:
        synthesize(torch.zeros(2, 9, 8, dtype=torch.complex128), Grid.box(16, 16))
    _one_line(error)
