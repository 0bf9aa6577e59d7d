"""The grid of a ``graphssl bench``: its settings (datasets x methods x WERank coefficients x swept values), its
runs (x seeds) and each run's checked config.

Torch-free, so that ``graphssl bench`` refuses a typo in ``--methods``, ``--set`` or a config value in a fraction
of a second, before torch loads.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .config import config_file_over_defaults, config_for_dataset, dataset_name, parse_assignment, with_overrides
from .errors import GraphSSLError
from .parallel import check_run_count


def split_values(text: str) -> list[str]:
    """Split ``V1,V2`` on the commas that are not inside brackets.

    Returns:
        The values, as text.

    Example:
        >>> split_values("[0.1,0],[0,0.1]")
        ['[0.1,0]', '[0,0.1]']
    """
    values, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            values.append(current)
            current = ""
        else:
            current += char
    values.append(current)
    if depth != 0 or any(not v.strip() for v in values):
        raise GraphSSLError(f"--set ...={text}: expected comma-separated values, e.g. --set augment.drop_edge_1=0.2,0.4")
    return values


def parse_sweep(assignment: str) -> tuple[str, list[Any]]:
    """A ``--set KEY=V1,V2,...`` of ``graphssl bench``: the key and its values, each read as YAML.

    Returns:
        ``(key, values)``.

    Example:
        >>> parse_sweep("encoder.layers=[256,256],[512,256]")
        ('encoder.layers', [[256, 256], [512, 256]])
    """
    key, sep, raw = assignment.partition("=")
    if not sep:
        raise GraphSSLError(f"--set '{assignment}': expected KEY=V1,V2,..., e.g. --set encoder.layers=[256,256],[512,256]")
    return key.strip(), [parse_assignment(f"{key}={value}")[1] for value in split_values(raw)]


@dataclass
class Setting:
    """One cell of the grid: a dataset, a WERank coefficient (or None: the config's), swept key values, and a
    method (or None: the config's; named in the run name only when ``--methods`` chose it).

    Example:
        >>> setting = Setting("cora", 0.1, (("augment.drop_edge_1", 0.2),))
        >>> setting.overrides(), setting.run_name(seed=3)
        ({'augment.drop_edge_1': 0.2, 'werank.alpha': 0.1}, 'cora__werank0.1__augment.drop_edge_1=0.2__seed3')
        >>> Setting("cora", 0, (), method="grace").run_name(seed=0)
        'cora__grace__werank0__seed0'
    """

    dataset: str
    werank: Any
    values: tuple[tuple[str, Any], ...]
    method: str | None = None

    def overrides(self) -> dict[str, Any]:
        """The config values this cell sets, by dotted key."""
        return {**dict(self.values), **({"method": self.method} if self.method is not None else {}),
                **({"werank.alpha": self.werank} if self.werank is not None else {})}

    def label(self) -> str:
        return " ".join(f"{key}={json.dumps(value)}" for key, value in self.values) or "-"

    def run_name(self, seed: int) -> str:
        parts = [self.dataset, *([self.method] if self.method is not None else []),
                 f"werank{json.dumps(self.werank)}" if self.werank is not None else "werank-config"]
        parts += [f"{key}={json.dumps(value)}" for key, value in self.values]
        return re.sub(r"[^A-Za-z0-9_.=,+-]", "", "__".join(parts)) + f"__seed{seed}"


def make_grid(datasets: Sequence[str], weranks: Sequence[Any] | None,
              sweeps: Sequence[tuple[str, list[Any]]], methods: Sequence[str] | None = None) -> list[Setting]:
    """Every combination of datasets, methods, WERank coefficients and swept values.

    Returns:
        One :class:`Setting` per cell, datasets outermost, then methods.

    Example:
        >>> [s.werank for s in make_grid(["cora"], [0, 0.1], [("optim.lr", [0.001, 0.002])])]
        [0, 0, 0.1, 0.1]
        >>> [(s.method, s.werank) for s in make_grid(["cora"], [0, 0.1], [], methods=["bgrl", "grace"])]
        [('bgrl', 0), ('bgrl', 0.1), ('grace', 0), ('grace', 0.1)]
    """
    keys = [key for key, _ in sweeps]
    if methods and "method" in keys:
        raise GraphSSLError("bench: give the methods with --methods or with --set method=..., not both")
    combos = list(itertools.product(*[values for _, values in sweeps]))
    return [Setting(dataset, werank, tuple(zip(keys, combo)), method)
            for dataset in datasets for method in (methods or [None]) for werank in (weranks or [None])
            for combo in combos]


def plan_runs(datasets: Sequence[str], *, methods: Sequence[str] | None = None, weranks: Sequence[Any] | None = None,
              seeds: int = 3, first_seed: int = 0, steps: int | None = None, sweeps: Sequence[str] = (),
              config: str | Path | None = None
              ) -> tuple[list[Setting], list[tuple[Setting, int]], list[dict[str, Any]]]:
    """The grid of :func:`graphssl.bench.run_bench` (its grid arguments, as named there), each run's config checked.

    Returns:
        ``(grid, runs, configs)``: the settings, every ``(setting, seed)`` and each run's config, in that order.

    Example:
        >>> grid, runs, configs = plan_runs(["cora"], weranks=[0, 0.1], seeds=2)
        >>> [(setting.werank, seed) for setting, seed in runs]
        [(0, 0), (0, 1), (0.1, 0), (0.1, 1)]
    """
    datasets = [dataset_name(dataset) for dataset in datasets]
    if seeds < 1:
        raise GraphSSLError(f"--seeds {seeds}: give the number of seeds, at least 1")
    if first_seed < 0:
        raise GraphSSLError(f"--first-seed {first_seed}: give a seed >= 0")
    grid = make_grid(datasets, weranks, [parse_sweep(s) for s in sweeps], methods)
    check_run_count(len(grid) * seeds, "--seeds")
    runs = [(setting, seed) for setting in grid for seed in range(first_seed, first_seed + seeds)]
    # Each file is read once (a grid may hold thousands of runs), then every run's own values are set and checked.
    base_configs = {dataset: config_file_over_defaults(config or config_for_dataset(dataset)) for dataset in datasets}
    fixed = {"optim.steps": steps} if steps is not None else {}
    return grid, runs, [with_overrides(base_configs[setting.dataset],
                                       {**setting.overrides(), "train.seed": seed, **fixed})
                        for setting, seed in runs]
