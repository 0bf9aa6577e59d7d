"""Search spaces for ``graphssl tune``: reading them, and the points a search tries.

A search space is a YAML mapping from dotted config keys to either a list of
values or a range::

    encoder.norm: [none, batch, layer]
    optim.lr: {low: 1.0e-4, high: 1.0e-2, log: true}   # log-uniform
    augment.drop_edge_1: {low: 0.0, high: 0.6}          # uniform; ints when low and high are ints

Trials are drawn at random with a fixed sampler seed, each key from its own
generator keyed by (sampler seed, trial, key): two searches over spaces that
share keys (say, with and without WERank) try the same values of those keys in
the same trials.  When every key is a list and the full grid has at most
``trials`` points, the grid is searched instead.

Nothing here loads torch, so a space file with unknown keys or malformed
values is refused at once; whether each value suits the config (say, a
negative ``optim.lr``) is checked when the search builds its trials.
"""

from __future__ import annotations

import copy
import itertools
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import KNOWN_KEYS, is_number, read_yaml_file, set_key, unknown_key_error, validate
from .errors import GraphSSLError
from .parallel import check_run_count


@dataclass(frozen=True)
class Range:
    """Values between ``low`` and ``high``: uniform, or log-uniform when ``log``; whole numbers when both
    bounds are; floats rounded to 4 significant digits (tables stay readable).

    Example:
        >>> Range(10, 20).sample(random.Random(0))
        18
    """

    low: float
    high: float
    log: bool = False

    def sample(self, rng: random.Random) -> float | int:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        if isinstance(self.low, int) and isinstance(self.high, int):
            return int(round(value))
        return float(f"{value:.4g}")


Space = dict[str, "list[Any] | Range"]


def parse_space(tree: Any, where: str) -> Space:
    """Check a space read from YAML: known keys, non-empty lists or ``{low, high[, log]}`` ranges.

    Returns:
        ``{dotted key: list of values or Range}``.

    Example:
        >>> parse_space({"optim": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}}, "encoder.norm": ["none"]}, "s")
        {'optim.lr': Range(low=0.0001, high=0.01, log=True), 'encoder.norm': ['none']}
    """
    if not isinstance(tree, dict) or not tree:
        raise GraphSSLError(f"{where}: a search space must map config keys to lists or ranges, "
                            f"e.g. 'optim.lr: {{low: 1.0e-4, high: 1.0e-2, log: true}}'")
    flat: dict[str, Any] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict) and not {"low", "high"} & set(value) and name not in KNOWN_KEYS:
                walk(value, name + ".")
            else:
                flat[name] = value

    walk(tree, "")
    space: Space = {}
    for key, value in flat.items():
        if key not in KNOWN_KEYS:
            raise unknown_key_error(key, where)
        if key == "train.seed":  # a seed that scores well on validation is luck, not a setting
            raise GraphSSLError(f"{where}: 'train.seed' is not a setting to search; every trial trains --seeds K "
                                f"seeds (--set train.seed=S for the first)")
        if isinstance(value, list):
            if not value:
                raise GraphSSLError(f"{where}: '{key}' has an empty list; give at least one value")
            space[key] = value
        elif isinstance(value, dict):
            extra = set(value) - {"low", "high", "log"}
            low, high, log = value.get("low"), value.get("high"), value.get("log", False)
            if extra or not (is_number(low) and is_number(high)) or low > high or not isinstance(log, bool) \
                    or (log and low <= 0):
                raise GraphSSLError(f"{where}: '{key}' must be a range {{low: A, high: B, log: true|false}} with "
                                    f"numbers A <= B (A > 0 when log), got {value}")
            space[key] = Range(low, high, log)
        else:
            raise GraphSSLError(f"{where}: '{key}' must be a list of values or a range {{low: A, high: B}}, "
                                f"got {value!r}")
    return space


def read_space(*paths: str | Path) -> Space:
    """The search space in the YAML file(s) at ``paths``, merged (a key in two files is an error).

    Returns:
        As :func:`parse_space`.

    Example:
        >>> space = read_space("configs/spaces/cora.yaml", "configs/spaces/werank.yaml")  # doctest: +SKIP
    """
    space: Space = {}
    for path in map(Path, paths):
        part = parse_space(read_yaml_file(path, "--space", "a YAML search space"), str(path))
        twice = [key for key in part if key in space]
        if twice:
            raise GraphSSLError(f"--space {path}: {', '.join(twice)} is already searched by an earlier --space file")
        space.update(part)
    return space


def check_search(space: Space, base: dict[str, Any], trials: int, seeds: int) -> None:
    """Refuse a search that cannot run: fewer than one trial or seed, more trainings than graphssl runs in one
    command, or TensorBoard files asked of trials that keep no run folders.

    Example:
        >>> check_search({"optim.lr": [0.001, 0.002]}, {"train": {"tensorboard": False}}, trials=2, seeds=3)
    """
    for flag, value in (("--trials", trials), ("--seeds", seeds)):
        if value < 1:
            raise GraphSSLError(f"{flag} {value}: give a whole number >= 1")
    check_run_count(trials * seeds, "--trials and --seeds")
    if base["train"]["tensorboard"] or "train.tensorboard" in space:
        raise GraphSSLError("train.tensorboard: tune keeps no run folders, so no TensorBoard files; each run's "
                            "scalars are in OUT/logs/<trial>__seed<k>.csv (graphssl plot draws them)")


def is_small_grid(space: Space, trials: int) -> bool:
    """Whether ``space`` is searched as a grid with ``trials`` trials: every key a list, at most ``trials`` points.

    Returns:
        ``True`` for a grid search, ``False`` for a random one.

    Example:
        >>> is_small_grid({"encoder.norm": ["none", "batch"]}, trials=8)
        True
    """
    lists = list(space.values())
    return all(isinstance(v, list) for v in lists) and math.prod(len(v) for v in lists) <= trials  # type: ignore[arg-type]


def sample_trials(space: Space, trials: int, sampler_seed: int = 0, grid: bool | None = None
                  ) -> list[dict[str, Any]]:
    """The points to try: the grid's points (at most ``trials``, in order) or ``trials`` random draws (each key
    from its own generator keyed by seed, trial and key).

    ``grid`` chooses; ``None`` lets :func:`is_small_grid` decide.  A search folder keeps the kind it started
    with, so that trial ``tNNN`` stays the same point when ``--trials`` changes.

    Returns:
        One ``{dotted key: value}`` per trial.

    Example:
        >>> sample_trials({"encoder.norm": ["none", "batch"]}, trials=8)
        [{'encoder.norm': 'none'}, {'encoder.norm': 'batch'}]
    """
    keys = list(space)
    if grid is None:
        grid = is_small_grid(space, trials)
    if grid:
        combos = itertools.islice(itertools.product(*(space[k] for k in keys)), trials)  # type: ignore[misc]
        return [dict(zip(keys, combo)) for combo in combos]
    points = []
    for trial in range(trials):
        point = {}
        for key in keys:
            rng = random.Random(f"{sampler_seed}/{trial}/{key}")
            values = space[key]
            point[key] = rng.choice(values) if isinstance(values, list) else values.sample(rng)
        points.append(point)
    return points


def trial_config(base: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """``base`` with the trial's values set; validated (a value the config cannot take is an error).

    Returns:
        A new config.

    Example:
        >>> from graphssl.config import load_config
        >>> trial_config(load_config(None), {"optim.lr": 0.002})["optim"]["lr"]
        0.002
    """
    config = copy.deepcopy(base)
    for key, value in point.items():
        set_key(config, key, value, "--space")
    validate(config)
    return config
