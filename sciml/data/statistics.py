"""Per-channel statistics in one streaming pass, exact on data larger than memory.

Blocks of samples are read once each; each block's count, mean and sum of squared deviations are
merged into float64 running totals with Chan, Golub & LeVeque's pairwise update (1979): for parts
``a`` and ``b``,

    n = n_a + n_b,   delta = mean_b - mean_a,
    mean = mean_a + delta n_b / n,   M2 = M2_a + M2_b + delta^2 n_a n_b / n,

which, unlike the textbook ``E[x^2] - E[x]^2``, does not lose precision when the mean is large
compared with the spread. NaN/Inf stop the pass with a :class:`DataError` naming the first bad sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import DataError
from ._layout import check_finite, read_values, require_variables, source_name

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["ChannelStatistics", "channel_statistics"]


@dataclass(frozen=True)
class ChannelStatistics:
    """Statistics of each variable over every sample, time and grid point (float64).

    Attributes:
        variables: channel names, in order.
        count: values per channel.
        mean, std, minimum, maximum: per channel, shape ``(channel,)``; ``std`` is the population one.
    """

    variables: tuple[str, ...]
    count: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray

    def as_dict(self) -> dict[str, dict[str, float]]:
        """``{variable: {"mean": ..., "std": ..., "min": ..., "max": ..., "count": ...}}`` (JSON-ready)."""
        return {
            name: {"mean": float(m), "std": float(s), "min": float(lo), "max": float(hi), "count": int(n)}
            for name, m, s, lo, hi, n in zip(self.variables, self.mean, self.std, self.minimum, self.maximum, self.count)
        }


class _Running:
    """Chan's parallel merge of (count, mean, M2) with min/max, in float64."""

    def __init__(self) -> None:
        self.count, self.mean, self.m2 = 0, 0.0, 0.0
        self.minimum, self.maximum = np.inf, -np.inf

    def update(self, block: np.ndarray) -> None:
        values = np.asarray(block, dtype=np.float64).ravel()
        n_b = values.size
        if n_b == 0:
            return
        mean_b = float(values.mean())
        m2_b = float(np.square(values - mean_b).sum())
        n = self.count + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.count * n_b / n
        self.count = n
        self.minimum = min(self.minimum, float(values.min()))
        self.maximum = max(self.maximum, float(values.max()))


def channel_statistics(
    ds: xr.Dataset, variables: Sequence[str], *, samples_per_read: int | None = None, progress: bool = False
) -> ChannelStatistics:
    """Mean, standard deviation, minimum and maximum of each variable, in one read of the data.

    Args:
        ds: canonical dataset (lazy is fine: memory use is one block, whatever the file size).
        variables: variables to summarise.
        samples_per_read: samples per block; default: as many as fit in about 16 MiB (float64 temporaries
            make the working memory about 5x that). A sample larger than that (one long trajectory, as
            an ERA5 file opens) is read in blocks of time steps of about that size.
        progress: show a progress bar over blocks.

    Raises:
        DataError: missing variable, no ``sample`` dim, or NaN/Inf (naming the variable and first sample).
    """
    from tqdm.auto import tqdm

    source = source_name(ds)
    require_variables(ds, variables)
    if "sample" not in ds.dims:
        raise DataError(f"{source}: no 'sample' dim; open the file with sciml.data.open")
    n, budget = ds.sizes["sample"], 16 << 20
    per_sample = sum(ds[v].size // n * ds[v].dtype.itemsize for v in variables)
    if samples_per_read is None:
        samples_per_read = max(1, budget // max(per_sample, 1))
    n_times = ds.sizes.get("time", 1)
    times_per_read = n_times if samples_per_read > 1 or per_sample <= budget else max(1, budget * n_times // per_sample)
    blocks = [(s, t) for s in range(0, n, samples_per_read) for t in range(0, n_times, times_per_read)]
    running = {v: _Running() for v in variables}
    for start, t0 in tqdm(blocks, desc="statistics", unit="block", disable=not progress):
        key = {"sample": slice(start, min(start + samples_per_read, n)), "time": slice(t0, t0 + times_per_read)}
        for name in variables:
            var = ds[name].variable
            values = read_values(var[tuple(key.get(d, slice(None)) for d in var.dims)])
            running[name].update(check_finite(values, source=source, name=name, dims=var.dims,
                                              offsets={"sample": start, "time": t0}))
    stats = [running[v] for v in variables]
    return ChannelStatistics(
        variables=tuple(variables),
        count=np.array([s.count for s in stats], dtype=np.int64),
        mean=np.array([s.mean for s in stats]),
        std=np.sqrt(np.array([s.m2 / max(s.count, 1) for s in stats])),
        minimum=np.array([s.minimum for s in stats]),
        maximum=np.array([s.maximum for s in stats]),
    )
