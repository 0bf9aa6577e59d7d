"""Pictures of collapse, drawn with matplotlib from run and bench folders.

* ``embedding_spectrum.png``: final singular values of each run's embedding
  matrix, log scale, runs overlaid (e.g. with vs without WERank);
* ``<run>_weight_spectra.png``: each encoder layer's weight singular values,
  and the embedding covariance's eigenvalues, over training steps from step 0
  (the layout of the WERank paper's Figure 1), from ``spectra.json``'s history;
  a panel whose values all lie near 1 (where WERank drives them) gets a linear
  axis with the target 1 marked, the others a log axis;
* ``curves.png``: loss, WERank term, RankMe and (when probed) validation
  accuracy against the training step, from each run's ``log.csv``, runs
  overlaid (e.g. with vs without WERank over training); a run still training
  can be drawn too;
* ``werank_sweep.png``: test accuracy, RankMe and the encoder weights' extreme
  singular values against the WERank coefficient, for a ``graphssl bench``
  folder (mean ± std over seeds), with its numbers in ``werank_sweep.csv``;
* the synthetic experiments' figures (``graphssl toy``): spectra over training
  (paper Fig. 1, 4, 5), final embedding spectrum against depth (Fig. 2) and
  final weight spectrum against augmentation strength (Fig. 3).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .config import read_yaml_file  # noqa: E402
from .errors import GraphSSLError, NotAsWritten, reason, warn  # noqa: E402
from .files import atomic_write, make_folder, read_json, write_text  # noqa: E402
from .run_layout import CONFIG, METRICS, SPECTRA  # noqa: E402
from .tables import SWEEP_TABLE, csv_text, mean_std  # noqa: E402
from .training_log import LOG, read_log  # noqa: E402


def _save(fig: Any, path: Path, dpi: int = 120) -> Path:
    fig.tight_layout()
    try:
        atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=dpi))
    finally:
        plt.close(fig)
    return path


def _read_json(path: Path) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError) as err:
        raise GraphSSLError(f"{path}: cannot read it ({reason(err)}); is the folder complete?") from None


# Checking every input before anything is drawn: a file that parses but is not as graphssl wrote it (edited,
# truncated, another program's) is one line naming it, and no picture is left half-made.

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_numbers(value: Any, nonempty: bool = False) -> bool:
    return isinstance(value, list) and (bool(value) or not nonempty) and all(_is_number(v) for v in value)


_MISSING = object()  # what a JSON object lacks


def _kind(value: Any) -> str:
    """What a JSON value is, for a message: ``a list``, ``the string 'abc'``, ``null``..."""
    if value is _MISSING:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"the string {value[:20]!r}"
    return {dict: "an object", list: "a list", bool: "a boolean"}.get(type(value), f"{value!r}"[:20])


def _spectra_problem(spectra: Any) -> str | None:
    """What is wrong with a run's parsed ``spectra.json`` (``None``: nothing), as :func:`plot` reads it."""
    if not isinstance(spectra, dict):
        return f"it holds {_kind(spectra)}, not an object with 'final' and 'history'"
    final = spectra.get("final")
    if not isinstance(final, dict) or not _is_numbers(final.get("embedding_singular_values"), nonempty=True):
        return "'final.embedding_singular_values' is not a list of numbers"
    weights = final.get("weights")
    if weights is not None and not (isinstance(weights, dict) and weights
                                    and all(_is_numbers(v, nonempty=True) for v in weights.values())):
        return "'final.weights' is not an object of lists of numbers"
    shapes = spectra.get("weight_shapes", {})
    if not (isinstance(shapes, dict) and all(isinstance(s, list) and len(s) == 2 and all(_is_number(n) for n in s)
                                             for s in shapes.values())):
        return "'weight_shapes' is not an object of [out, in] pairs"
    history = spectra.get("history")
    if not isinstance(history, list):
        return "'history' is not a list"
    for index, entry in enumerate(history):
        where = f"'history' entry {index}"
        if not isinstance(entry, dict) or not _is_number(entry.get("step")):
            return f"{where} has no number 'step'"
        weights = entry.get("weights")
        if not (isinstance(weights, dict) and weights and all(_is_numbers(v) for v in weights.values())):
            return f"{where} has no 'weights' object of lists of numbers"
        if not _is_numbers(entry.get("embedding_covariance")):
            return f"{where} has no 'embedding_covariance' list of numbers"
        first = history[0]  # checked above, at index 0
        if list(weights) != list(first["weights"]) \
                or any(len(values) != len(first["weights"][name]) for name, values in weights.items()) \
                or len(entry["embedding_covariance"]) != len(first["embedding_covariance"]):
            return f"{where} has other weights or spectrum lengths than entry 0"
    return None


def _read_spectra(run: Path) -> dict[str, Any]:
    """A run's ``spectra.json``, checked to be as graphssl writes it (else one :class:`GraphSSLError`)."""
    path = run / SPECTRA
    spectra = _read_json(path)
    problem = _spectra_problem(spectra)
    if problem:
        raise NotAsWritten(path, problem)
    return spectra


def _label(run: Path) -> str:
    path = run / METRICS
    metrics = _read_json(path)
    if not isinstance(metrics, dict) or not (_is_number(metrics.get("werank"))
                                             or _is_numbers(metrics.get("werank"))):
        raise NotAsWritten(path, "it has no number or list of numbers 'werank'")
    return f"{run.name} ({metrics.get('method', 'bgrl')}, WERank {metrics['werank']})"


def _read_run_log(source: Path) -> list[dict[str, float]]:
    """A run's ``log.csv`` (or a log file itself), checked to hold rows with a step and something to draw."""
    path = source if source.is_file() else source / LOG
    rows = read_log(path)
    if not rows:
        raise GraphSSLError(f"{path} has no rows (empty, or a header only: a run just started logs its first "
                            f"row after train.log_every steps); plot it later, or give folders written by "
                            f"'graphssl train' or 'graphssl bench' (or re-run that command)")
    if not any(key in row and row[key] == row[key] for key, _, _ in CURVES for row in rows):
        raise NotAsWritten(path, f"it has no {', '.join(key for key, _, _ in CURVES)} values")
    return rows


def plot_embedding_spectra(runs: Sequence[Path], out: Path) -> Path:
    """The final singular values of each run's embedding matrix, runs overlaid on a log axis.

    Returns:
        The path of ``embedding_spectrum.png`` in ``out``.

    Example:
        >>> plot_embedding_spectra([Path("runs/cora-werank0"), Path("runs/cora-werank0.1")], Path("plots"))  # doctest: +SKIP
        PosixPath('plots/embedding_spectrum.png')
    """
    return _draw_embedding_spectra([(_read_spectra(run), _label(run)) for run in runs], out)


def _draw_embedding_spectra(runs: Sequence[tuple[dict[str, Any], str]], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for spectra, label in runs:
        values = spectra["final"]["embedding_singular_values"]
        ax.semilogy(range(1, len(values) + 1), [max(v, 1e-12) for v in values], label=label)
    ax.set_xlabel("singular value index")
    ax.set_ylabel("singular value of the embedding matrix")
    ax.set_title("Final embedding spectrum")
    ax.legend(fontsize=7)
    return _save(fig, out / "embedding_spectrum.png")


def _layer_title(index: int, shape: Sequence[int] | None) -> str:
    # A weight is [out, in] (torch's Linear): the layer maps `in` features to `out`.
    return f"layer {index + 1}" + (f": {shape[1]} → {shape[0]}" if shape else "")


def plot_training_spectra(run: Path, out: Path) -> Path:
    """Each encoder layer's weight singular values and the embedding covariance's eigenvalues over training
    steps, one panel each (the WERank paper's Figure 1), from a run's ``spectra.json``.

    Returns:
        The path of ``<run name>_weight_spectra.png`` in ``out``.

    Example:
        >>> plot_training_spectra(Path("runs/cora-wr"), Path("plots"))  # doctest: +SKIP
        PosixPath('plots/cora-wr_weight_spectra.png')
    """
    spectra = _read_spectra(run)
    if not spectra["history"]:
        raise GraphSSLError(f"{run}: no spectra were recorded during training; train with "
                            f"--set train.spectra_every=K (K > 0)")
    return _draw_training_spectra(run, spectra, _label(run), out)


def _draw_training_spectra(run: Path, spectra: dict[str, Any], label: str, out: Path) -> Path:
    history = spectra["history"]
    steps = [h["step"] for h in history]
    shapes = spectra.get("weight_shapes", {})  # runs written before graphssl recorded shapes have none
    panels = [(_layer_title(i, shapes.get(name)), [h["weights"][name] for h in history], "singular value")
              for i, name in enumerate(history[0]["weights"])]
    panels.append(("embedding covariance", [h["embedding_covariance"] for h in history], "eigenvalue"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), squeeze=False)
    _spectra_panels(axes[0], steps, panels, "step")
    fig.suptitle(label, fontsize=9)
    return _save(fig, out / f"{run.name}_weight_spectra.png")


def _alpha(run: Path) -> str:
    """The run's WERank coefficient(s) from its config.yaml (there from the start), e.g. ``0.1`` or ``[0.1, 0]``."""
    try:
        alpha = read_yaml_file(run / CONFIG, "plot", "a run folder written by 'graphssl train'")["werank"]["alpha"]
        return f"[{', '.join(f'{a:g}' for a in alpha)}]" if isinstance(alpha, list) else f"{alpha:g}"
    except (OSError, KeyError, TypeError, ValueError):
        raise GraphSSLError(f"{run}: no readable config.yaml; give a run folder written by 'graphssl train'") from None


CURVES = (("loss", 1, "loss"), ("werank", 1, "WERank term"), ("rankme", 1, "RankMe of the embeddings"),
          ("val_acc", 100, "validation accuracy (%)"))


def _curve_label(source: Path) -> str:
    # A run folder says its coefficient in config.yaml; a bare log (tune's OUT/logs/<trial>__seed<k>.csv) its name.
    return source.stem if source.is_file() else f"{source.name} (WERank α {_alpha(source)})"


def plot_curves(runs: Sequence[Path], out: Path) -> Path:
    """Loss, WERank term, RankMe and (when any run probed) validation accuracy against the training step,
    one panel each, from the runs' ``log.csv`` (or log files themselves, as ``graphssl tune`` keeps them),
    runs overlaid in one colour each.

    Returns:
        The path of ``curves.png`` in ``out``.

    Example:
        >>> plot_curves([Path("runs/cora-werank0"), Path("runs/cora-werank0.1")], Path("plots"))  # doctest: +SKIP
        PosixPath('plots/curves.png')
    """
    return _draw_curves([(_read_run_log(run), _curve_label(run)) for run in runs], out)


def _draw_curves(logs: Sequence[tuple[list[dict[str, float]], str]], out: Path) -> Path:
    measured = [(key, scale, name) for key, scale, name in CURVES
                if any(key in row and row[key] == row[key] for rows, _ in logs for row in rows)]  # NaN != NaN
    fig, axes = plt.subplots(1, len(measured), figsize=(4 * len(measured), 3.4), squeeze=False)
    for index, (rows, label) in enumerate(logs):
        for ax, (key, scale, _) in zip(axes[0], measured):
            points = [(row["step"], scale * row[key]) for row in rows if key in row and row[key] == row[key]]
            if not points:  # e.g. a run that never probed, in the validation panel
                continue
            sparse = key in ("rankme", "val_acc")  # measured every spectra_every / probe_every steps
            ax.plot([x for x, _ in points], [y for _, y in points], color=f"C{index}", lw=1,
                    marker="o" if sparse else None, ms=3, label=label)
    for ax, (_, _, name) in zip(axes[0], measured):
        ax.set_xlabel("step")
        ax.set_ylabel(name)
    axes[0][0].legend(fontsize=7)
    return _save(fig, out / "curves.png")


def _weight_extremes(run: Path) -> tuple[float, float] | None:
    """Smallest and largest singular value over all encoder weights at the end of a bench run, if recorded."""
    path = run / SPECTRA
    if not path.is_file():
        return None
    weights = _read_spectra(run)["final"].get("weights")
    if weights is None:
        raise NotAsWritten(path, "'final.weights' is missing")
    values = [v for layer in weights.values() for v in layer]
    return min(values), max(values)


def _bench_result_problem(result: Any) -> str | None:
    """What is wrong with a parsed ``results/*.json`` of a bench folder (``None``: nothing), as :func:`plot`
    reads it."""
    if not isinstance(result, dict):
        return f"it holds {_kind(result)}, not an object"
    for key, kind in (("dataset", str), ("settings", dict), ("metrics", dict)):
        if not isinstance(result.get(key, _MISSING), kind):
            return f"its '{key}' is {_kind(result.get(key, _MISSING))}"
    metrics = result["metrics"]
    werank = metrics.get("werank", _MISSING)
    if not (_is_number(werank) and werank >= 0 or _is_numbers(werank, nonempty=True)):
        return f"its 'metrics.werank' is {_kind(werank)}, not a number >= 0 or a list of numbers"
    for key in ("test_acc", "rankme"):
        if not _is_number(metrics.get(key, _MISSING)):
            return f"its 'metrics.{key}' is {_kind(metrics.get(key, _MISSING))}, not a number"
    if not isinstance(metrics.get("method", "bgrl"), str):
        return f"its 'metrics.method' is {_kind(metrics['method'])}, not a name"
    return None


def _read_bench(bench: Path) -> dict[tuple[str, str], dict[float, list[dict[str, Any]]]]:
    """A bench folder's results, checked, grouped by (dataset, settings) and WERank coefficient; results with
    per-layer coefficients (no single x position) are left out."""
    paths = sorted((bench / "results").glob("*.json"))
    if not paths:
        raise GraphSSLError(f"{bench}: no finished runs in results/; run 'graphssl bench' first")
    groups: dict[tuple[str, str], dict[float, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for path in paths:
        r = _read_json(path)
        problem = _bench_result_problem(r)
        if problem:
            raise GraphSSLError(f"{path} is not a result of 'graphssl bench' ({problem}); give folders written by "
                                f"'graphssl bench' (or re-run that command)")
        alpha = r["metrics"]["werank"]
        if isinstance(alpha, list):
            continue  # per-layer coefficients have no single x position
        setting = " ".join([r["metrics"].get("method", "bgrl"), *(f"{k}={v}" for k, v in r["settings"].items())])
        extremes = _weight_extremes(bench / "runs" / path.stem)
        row = {**r["metrics"], **({"weight_sv_min": extremes[0], "weight_sv_max": extremes[1]} if extremes else {})}
        groups[(r["dataset"], setting)][float(alpha)].append(row)
    return groups


def plot_werank_sweep(bench: Path, out: Path) -> Path:
    """Test accuracy, RankMe and (from the run folders) the encoder weights' extreme singular values, mean ± std
    over seeds, against the WERank coefficient, from a bench folder.

    Returns:
        The path of ``werank_sweep.png`` in ``out``.

    Example:
        >>> plot_werank_sweep(Path("runs/bench"), Path("plots"))  # doctest: +SKIP
        PosixPath('plots/werank_sweep.png')
    """
    return _draw_werank_sweep(_read_bench(bench), out)


SWEEP_QUANTITIES = (("test_acc", 100, "test accuracy (%)"), ("rankme", 1, "RankMe"),
                    ("weight_sv_min", 1, "encoder weight singular values"),
                    ("weight_sv_max", 1, "encoder weight singular values"))


def _sweep_rows(groups: dict[tuple[str, str], dict[float, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """One row per (dataset, settings, alpha): the seeds' count and each quantity's mean and std (blank where a
    run folder had no spectra), the numbers ``werank_sweep.png`` draws."""
    rows = []
    for (dataset, setting), by_alpha in sorted(groups.items()):
        for alpha in sorted(by_alpha):
            runs = by_alpha[alpha]
            row: dict[str, Any] = {"dataset": dataset, "setting": setting, "alpha": alpha, "seeds": len(runs)}
            for key, scale, _ in SWEEP_QUANTITIES:
                known = all(key in m for m in runs)
                mean, std = mean_std([scale * float(m[key]) for m in runs]) if known else ("", "")
                row |= {f"{key}_mean": mean, f"{key}_std": std}
            rows.append(row)
    return rows


def _draw_werank_sweep(groups: dict[tuple[str, str], dict[float, list[dict[str, Any]]]], out: Path) -> Path:
    rows = _sweep_rows(groups)
    columns = ["dataset", "setting", "alpha", "seeds"] + [f"{k}_{s}" for k, _, _ in SWEEP_QUANTITIES
                                                          for s in ("mean", "std")]
    write_text(out / SWEEP_TABLE, csv_text(columns, rows))
    with_weights = any(row["weight_sv_min_mean"] != "" for row in rows)
    fig, axes = plt.subplots(1, 3 if with_weights else 2, figsize=(13.5 if with_weights else 9, 3.6))
    panels = [(axes[0], "test_acc"), (axes[1], "rankme")]
    if with_weights:
        panels += [(axes[2], "weight_sv_min"), (axes[2], "weight_sv_max")]
    for dataset, setting in sorted(groups):
        label = f"{dataset} {setting}".strip()
        mine = [r for r in rows if (r["dataset"], r["setting"]) == (dataset, setting)]
        for ax, key in panels:
            known = [r for r in mine if r[f"{key}_mean"] != ""]
            suffix = {"weight_sv_min": " (smallest)", "weight_sv_max": " (largest)"}.get(key, "")
            ax.errorbar([r["alpha"] for r in known], [r[f"{key}_mean"] for r in known],
                        yerr=[r[f"{key}_std"] for r in known], marker="o", capsize=3, label=label + suffix)
    names = {key: name for key, _, name in SWEEP_QUANTITIES}
    for ax, key in panels:
        ax.set_xscale("symlog", linthresh=min([r["alpha"] for r in rows if r["alpha"] > 0] or [0.01]))
        ax.set_xlabel("WERank coefficient α")
        ax.set_ylabel(names[key])
    if with_weights:
        axes[2].set_yscale("log")
        axes[2].axhline(1.0, color="grey", lw=0.6, ls="--")
        axes[2].legend(fontsize=7)
    axes[0].legend(fontsize=7)
    return _save(fig, out / "werank_sweep.png")


def plot(folders: Sequence[str | Path], out: str | Path | None = None) -> list[Path]:
    """Draw every picture the given run and bench folders allow (``graphssl plot``); a run still training (its
    ``log.csv`` only) gets its curves.  The PNGs' names (``embedding_spectrum.png``, ``curves.png``,
    ``werank_sweep.png``, ``<run>_weight_spectra.png``) are no other command's, so drawing into any folder,
    a run's or a bench's too, replaces nothing of another run.  Every input is read and checked before
    anything is drawn: a file that is not as graphssl wrote it is one :class:`GraphSSLError` naming it, and no
    picture is written.

    Returns:
        The PNG paths, in ``out`` (default: ``RUN_DIR/plots`` for one folder, else ``plots/``).

    Example:
        >>> plot(["runs/cora-werank0", "runs/cora-werank0.1"], "plots")  # doctest: +SKIP
        [PosixPath('plots/embedding_spectrum.png'), PosixPath('plots/cora-werank0_weight_spectra.png'), ..., PosixPath('plots/curves.png')]
    """
    paths = [Path(f) for f in folders]
    runs, logged, benches = [], [], []
    for path in paths:
        try:
            finished = (path / SPECTRA).is_file() and (path / METRICS).is_file()
            if path.is_file() and path.suffix == ".csv":  # a log of its own, e.g. one of tune's OUT/logs/
                logged.append(path)
                continue
            if (path / "tune.json").is_file():
                raise GraphSSLError(f"{path} is a tune folder; plot its runs from their logs, e.g. graphssl plot "
                                    f"{path / 'logs'}/t000__seed0.csv ... (trials.md ranks the trials)")
        except OSError as err:  # a name too long for the file system
            raise GraphSSLError(f"{path}: cannot read it ({err.strerror}); give a run or bench folder") from None
        if finished:
            runs.append(path)
        if (path / LOG).is_file():
            logged.append(path)  # finished or still training
        elif not finished and (path / "results").is_dir():
            benches.append(path)
        elif not finished:
            raise GraphSSLError(f"{path} is neither a run (log.csv; spectra.json, metrics.json once finished) nor a "
                                f"bench folder (results/); give folders written by 'graphssl train' or 'graphssl bench'")
    # Everything is read and checked first, so a bad file stops the command before any picture is written.
    finished_runs = [(run, _read_spectra(run), _label(run)) for run in runs]
    logs = [(_read_run_log(source), _curve_label(source)) for source in logged]
    sweeps = [_read_bench(bench) for bench in benches]
    target = make_folder(out if out is not None else paths[0] / "plots" if len(paths) == 1 else "plots")
    written = []
    if finished_runs:
        written.append(_draw_embedding_spectra([(spectra, label) for _, spectra, label in finished_runs], target))
        for run, spectra, label in finished_runs:
            if spectra["history"]:
                written.append(_draw_training_spectra(run, spectra, label, target))
            else:  # trained with train.spectra_every 0: its curves are still there to draw
                warn(f"{run}: no spectra were recorded during training (train.spectra_every 0), so no weight "
                     f"spectra picture")
    if logs:
        written.append(_draw_curves(logs, target))
    written += [_draw_werank_sweep(groups, target) for groups in sweeps]
    return written


NEAR_ONE = (0.25, 4.0)  # a panel whose values all lie here is drawn on a linear axis


def _spectra_panels(axes: Any, steps: Sequence[int], panels: Sequence[tuple[str, list[list[float]], str]],
                    xlabel: str) -> None:
    """One spectrum per panel over ``steps``: one line per singular value (or eigenvalue).

    Near 1, where WERank drives the singular values, a log axis squeezes the
    interesting part into a sliver, so such panels are linear, with 1 marked.
    """
    for ax, (title, series, ylabel) in zip(axes, panels):
        near_one = all(NEAR_ONE[0] <= v <= NEAR_ONE[1] for values in series for v in values)
        for index in range(len(series[0])):
            line = [values[index] for values in series]
            if near_one:
                ax.plot(steps, line, lw=0.8)
            else:
                ax.semilogy(steps, [max(v, 1e-12) for v in line], lw=0.8)
        if near_one:
            ax.axhline(1.0, color="black", lw=0.6, ls=":")
        ax.set_title(title, fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)


def plot_toy_training(result: dict[str, Any], path: Path) -> Path:
    """Singular values of every weight and of the embedding covariance over epochs (paper Fig. 1, 4, 5).

    Returns:
        ``path``.

    Example:
        >>> plot_toy_training(train_toy(ToyConfig()), Path("spectra.png"))  # doctest: +SKIP
    """
    history = result["history"]
    panels = [(f"W{i + 1}", [h["weights"][i] for h in history], "singular value")
              for i in range(len(history[0]["weights"]))]
    panels.append(("embedding covariance", [h["embedding"] for h in history], "eigenvalue"))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3), squeeze=False)
    _spectra_panels(axes[0], [h["epoch"] for h in history], panels, "epoch")
    c = result["config"]
    fig.suptitle(f"{c['loss']}, L={c['layers']}, k={c['k']:g}, WERank {c['werank']:g}", fontsize=9)
    return _save(fig, path, dpi=110)


def _toy_grid_figure(results: dict[str, dict[str, Any]], path: Path, vary: str, fixed: dict[str, Any],
                     values_of: Any, ylabel: str) -> Path:
    losses = sorted({r["config"]["loss"] for r in results.values()})
    fig, axes = plt.subplots(1, len(losses), figsize=(4 * len(losses), 3.4), squeeze=False)
    for ax, loss in zip(axes[0], losses):
        chosen = [r for r in results.values() if r["config"]["loss"] == loss
                  and all(r["config"][k] == v for k, v in fixed.items())]
        levels = sorted({r["config"][vary] for r in chosen})
        colors = plt.cm.viridis([i / max(len(levels) - 1, 1) for i in range(len(levels))])
        for color, level in zip(colors, levels):
            for r in chosen:
                if r["config"][vary] == level:
                    values = values_of(r["final"])
                    style = "--" if r["config"]["werank"] > 0 else "-"
                    ax.semilogy(range(1, len(values) + 1), [max(v, 1e-12) for v in values], style, color=color,
                                label=f"{vary}={level:g}" + (" + WERank" if style == "--" else ""))
        ax.set_title(loss)
        ax.set_xlabel("index")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=6)
    return _save(fig, path, dpi=110)


def plot_toy_depths(results: dict[str, dict[str, Any]], path: Path) -> Path:
    """Final embedding spectrum for each depth L, solid without and dashed with WERank (paper Fig. 2).

    Returns:
        ``path``.

    Example:
        >>> plot_toy_depths(results, Path("runs/toy/fig2_embedding_vs_depth.png"))  # doctest: +SKIP
    """
    return _toy_grid_figure(results, path, "layers", {"k": 0.1}, lambda final: final["embedding"],
                            "embedding covariance singular value")


def plot_toy_strengths(results: dict[str, dict[str, Any]], path: Path) -> Path:
    """Final weight spectrum of one-layer models for each augmentation strength k (paper Fig. 3).

    Returns:
        ``path``.

    Example:
        >>> plot_toy_strengths(results, Path("runs/toy/fig3_weights_vs_k.png"))  # doctest: +SKIP
    """
    return _toy_grid_figure(results, path, "k", {"layers": 1}, lambda final: final["weights"][0],
                            "weight singular value")
