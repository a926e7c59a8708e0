"""Data in and out: every supported format into the canonical layout, and xarray <-> tensors.

``open`` / ``write`` (:mod:`.io`) are the file edge; :mod:`.loaders` streams canonical datasets into
training as torch datasets, :mod:`.statistics` computes normalisation statistics in one pass, and
:mod:`.tensors` turns small datasets into ``(batch, channel, *space)`` tensors in memory.
"""

from ..errors import DataError
from .cf import trajectory_dataset
from .io import detect_format, open, write
from .levels import stack_levels, unstack_levels
from .loaders import ChunkShuffleSampler, OperatorPairs, TrajectoryWindows, split_by_trajectory
from .statistics import ChannelStatistics, channel_statistics
from .tensors import grid_of, stack_fields

__all__ = [
    "DataError", "open", "write", "detect_format", "trajectory_dataset", "grid_of", "stack_fields",
    "OperatorPairs", "TrajectoryWindows", "ChunkShuffleSampler", "split_by_trajectory",
    "ChannelStatistics", "channel_statistics", "stack_levels", "unstack_levels",
]
