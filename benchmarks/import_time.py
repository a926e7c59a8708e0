"""Import cost of `sciml` over `torch` (target: at most 0.3 s), measured in fresh interpreters.

Usage: python benchmarks/import_time.py [--repeats 7]
Writes benchmarks/results/<device-kind>/import_time.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from sciml._atomic import write_text

SNIPPET = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def measure(module: str, repeats: int, pre: str = "") -> list[float]:
    code = (pre + "; " if pre else "") + SNIPPET.format(module=module)
    return [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(repeats)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch_s = measure("torch", args.repeats)
    sciml_over_torch = measure("sciml", args.repeats, pre="import torch")
    neuralop_over_torch = measure("neuralop", args.repeats, pre="import torch")
    result = {
        "torch_import_s_median": statistics.median(torch_s),
        "sciml_over_torch_s_median": statistics.median(sciml_over_torch),
        "sciml_over_torch_s_max": max(sciml_over_torch),
        "neuralop_over_torch_s_median": statistics.median(neuralop_over_torch),
        "target_s": 0.3,
        "repeats": args.repeats,
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
    }
    out = Path(__file__).parent / "results" / "cpu"
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "import_time.json", json.dumps(result, indent=2))
    write_text(out / "import_time.md", 
        "| import | median seconds |\n|---|---|\n"
        f"| torch | {result['torch_import_s_median']:.3f} |\n"
        f"| sciml (after torch) | {result['sciml_over_torch_s_median']:.3f} (max {result['sciml_over_torch_s_max']:.3f}; target <= 0.3) |\n"
        f"| neuralop (after torch) | {result['neuralop_over_torch_s_median']:.3f} |\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
