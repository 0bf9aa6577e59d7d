"""The ``graphssl`` command: a thin layer over the Python API.

Every user error ends in one line on stderr and exit status 2 (3 for a
diverged run), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .bench_grid import plan_runs
from .config import (DEFAULTS, METHOD_NAMES, TOY_LOSSES, config_for_dataset, dataset_name, device_name,
                     load_config, parse_assignment, read_yaml, without_negative_zeros)
from .errors import DivergenceError, GraphSSLError, WriteFailed, silence_known_warnings
from .parallel import check_jobs
from .run_layout import CHECKPOINT, check_run_folder, run_folder_path
from .search_space import check_search, read_space


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # main prints "graphssl: error: " before every message, so only a sub-command's name is added.
        where = "" if self.prog == "graphssl" else f"{self.prog}: "
        raise GraphSSLError(f"{where}{message} (see '{self.prog} --help')")


def _add_device_and_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", type=device_name,
                   help="auto (cuda when available), cpu, cuda, cuda:1 ...")
    p.add_argument("--data-root", metavar="DIR", help="dataset folder (default: $GRAPHSSL_DATA, else ./data)")


def _add_train(commands: Any) -> None:
    p = commands.add_parser(
        "train", help="pre-train BGRL, GRACE, VICReg or CCA-SSG (+ WERank) on a graph, then probe and rank the "
                      "embeddings",
        usage="%(prog)s (--dataset DATASET | --resume RUN_DIR) [options]",
        description="Pre-train a self-supervised method (BGRL by default) with the WERank regularizer on the encoder "
                    "weights, evaluate the frozen encoder with a linear probe, report test accuracy and embedding "
                    "rank, and write a run folder (config.yaml, checkpoint.pt, log.csv, metrics.json, spectra.json).",
        epilog="Precedence: built-in defaults < --config YAML < --set < the flags above. "
               "Example: graphssl train --dataset cora --method grace --werank 0.1 --set optim.lr=0.002")
    # A new run names its dataset, a resumed one has it: the usage line says so. (A required argparse group
    # would report a mistyped flag, --datset, as a missing --dataset instead of naming the typo.)
    p.add_argument("--dataset", help="cora, citeseer, pubmed, ogbn-arxiv or synthetic-arxiv (required unless --resume)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue an interrupted run from its last checkpoint (same config, same folder; "
                        "a torchrun run resumes under torchrun, as many processes, with --distributed)")
    p.add_argument("--config", metavar="YAML",
                   help="config file (default: graphssl's configs/<dataset>.yaml if it ships one, else "
                        "configs/cora.yaml)")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, dotted (e.g. optim.lr=0.001, encoder.layers=[256,256]); repeatable")
    _add_method(p, "the self-supervised objective")
    p.add_argument("--werank", type=float, nargs="+", metavar="ALPHA",
                   help="WERank coefficient: one for every encoder layer, or one per layer (0 = the plain method; "
                        f"default: the config's, {DEFAULTS['werank']['alpha']} for Cora); with --set "
                        "werank.schedule=adaptive, the starting value, then raised or lowered from the measured "
                        "RankMe (README, 'Adaptive WERank coefficient')")
    p.add_argument("--steps", type=int, help="number of training steps (optim.steps; default: the config's, "
                                             f"{DEFAULTS['optim']['steps']} for Cora); the learning-rate warm-up "
                                             f"(optim.warmup_steps, {DEFAULTS['optim']['warmup_steps']} for Cora) "
                                             f"keeps its length, so a run of fewer steps than the warm-up "
                                             f"never reaches optim.lr")
    p.add_argument("--seed", type=int, help=f"random seed (train.seed; default: the config's, {DEFAULTS['train']['seed']})")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help="mini-batch training with N seed nodes per step (train.batch_size; 0: full-batch)")
    p.add_argument("--num-neighbors", type=int, nargs="+", metavar="K",
                   help="mini-batch: neighbours sampled per node at each layer's hop, e.g. 10 10 10 (-1: all)")
    p.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="write checkpoint.pt every N steps (train.checkpoint_every; 0: only at the end)")
    p.add_argument("--precision", metavar="P",
                   help="32 (default), bf16-mixed (dense products and activations in bfloat16 under autocast; parameters, "
                        "losses and optimizer in float32; pays on CPUs with AVX-512 and on GPUs) or tf32 (CUDA: TF32 "
                        "matrix products) (train.precision)")
    p.add_argument("--tensorboard", action="store_const", const=True,
                   help="also write log.csv's scalars to RUN_DIR/tb/ for TensorBoard (train.tensorboard; needs "
                        "pip install 'graphssl-werank[tensorboard]')")
    _add_device_and_data(p)
    p.add_argument("--out", metavar="DIR", help="run folder to create (default: a new folder under runs/)")
    p.add_argument("--distributed", action="store_true",
                   help="one rank of a torchrun job (gloo on CPU, NCCL on GPU); needs --batch-size")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_method(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--method", metavar="NAME",
                   help=f"{what}: {', '.join(METHOD_NAMES)} (the config key method; BGRL unless the config "
                        f"names another); "
                        f"everything else (encoder, views, schedule) stays as the config sets it")


def _add_eval(commands: Any) -> None:
    p = commands.add_parser(
        "eval", help="re-run the linear probe and rank metrics on a run, or on embeddings from any model",
        description="Linear evaluation. With RUN_DIR: reload its checkpoint (as data only), recompute the "
                    "embeddings and probe them (writes RUN_DIR/eval.json). With --embeddings FILE --dataset NAME: "
                    "probe a .pt or .npy matrix with one row per node, made by any method (writes NAME.eval.json "
                    "beside FILE). Neither replaces a run's own files.")
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a folder written by 'graphssl train'")
    p.add_argument("--save-embeddings", metavar="FILE", nargs="?", const="",
                   help="also write the embeddings as a tensor file (default RUN_DIR/embeddings.pt)")
    p.add_argument("--embeddings", metavar="FILE", help="a .pt or .npy matrix to evaluate instead of a run")
    p.add_argument("--dataset", help="the dataset the --embeddings rows belong to")
    p.add_argument("--config", metavar="YAML", help="probe settings for --embeddings (default: built-in)")
    p.add_argument("--out", metavar="FILE", help="write the metrics as JSON here instead")
    _add_device_and_data(p)


def _add_bench(commands: Any) -> None:
    p = commands.add_parser(
        "bench", help="train a grid (datasets x methods x WERank x config values x seeds) and write its tables",
        description="Run a grid of trainings and render OUT/table.md and OUT/table.csv (mean ± std over seeds of "
                    "test accuracy, rank and RankMe; training time; seeds). One JSON per finished run in "
                    "OUT/results/; running the same command again skips the runs that finished with the same "
                    "effective config (every key the training reads), resumes a killed one from its last checkpoint "
                    "(train.checkpoint_every), and re-runs any whose settings changed.",
        epilog="Example: graphssl bench --datasets cora --methods bgrl grace --werank 0 0.1 --seeds 10 "
               "--set augment.drop_edge_1=0.2,0.5 --out runs/bench-cora")
    p.add_argument("--datasets", nargs="+", default=["cora"], metavar="NAME",
                   help="datasets to train on: cora, citeseer, pubmed, ogbn-arxiv, synthetic-arxiv (default cora)")
    p.add_argument("--methods", nargs="+", metavar="NAME",
                   help=f"self-supervised methods to compare: {', '.join(METHOD_NAMES)} (default: the config's)")
    p.add_argument("--werank", nargs="+", metavar="ALPHA", type=_werank_value,
                   help="WERank coefficients to compare, e.g. 0 0.01 0.1 or [0.1,0] (default: the config's)")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds per setting (default 3)")
    p.add_argument("--first-seed", type=int, default=0, metavar="S",
                   help="seeds are S .. S+N-1 (default 0); e.g. fresh seeds after a tune used 0 .. K-1")
    p.add_argument("--steps", type=int, help="training steps (optim.steps; default: the config's)")
    p.add_argument("--set", dest="sweeps", action="append", default=[], metavar="KEY=V1,V2",
                   help="sweep any config key over comma-separated values; repeatable (a grid)")
    p.add_argument("--config", metavar="YAML", help="base config (default: configs/<dataset>.yaml)")
    p.add_argument("--out", default="runs/bench", metavar="DIR", help="bench folder (default runs/bench)")
    p.add_argument("--jobs", type=int, metavar="J",
                   help="trainings at once, each with cores/J torch threads (default: 2 on 2+ cores, measured)")
    _add_device_and_data(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_tune(commands: Any) -> None:
    p = commands.add_parser(
        "tune", help="search hyper-parameters, choosing on validation accuracy only",
        description="Random search (or grid, when the space is small) over a YAML search space. Each trial\n"
                    "trains --seeds seeds and probes them on the validation nodes; the trial with the best mean\n"
                    "validation accuracy wins. Test labels are never read. Writes OUT/trials.csv, OUT/trials.md\n"
                    "and OUT/best.yaml (a complete config for --config); running the same command again continues.",
        epilog="SPACE.yaml maps dotted config keys to a list of values or to a range, e.g.\n"
               "  encoder.norm: [none, batch, layer]\n"
               "  optim.lr: {low: 1.0e-4, high: 1.0e-2, log: true}\n"
               "Example: graphssl tune --dataset cora --space configs/spaces/cora.yaml --space configs/spaces/werank.yaml "
               "--trials 64 --seeds 3 --out runs/tune-cora-werank",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help="cora, citeseer, pubmed, ogbn-arxiv or synthetic-arxiv")
    p.add_argument("--space", required=True, action="append", metavar="SPACE.yaml",
                   help="the search space (see below); repeat to search the union of several files")
    p.add_argument("--trials", type=int, default=64, help="random trials (default 64; fewer when the grid is smaller)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per trial, train.seed onwards (default 3)")
    p.add_argument("--config", metavar="YAML", help="base config (default: configs/<dataset>.yaml)")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                   help="fix a config key for every trial; repeatable")
    _add_method(p, "fix the self-supervised objective (or search method in the space instead)")
    p.add_argument("--werank", type=float, nargs="+", metavar="ALPHA",
                   help="fix WERank's coefficient (or search werank.alpha in the space instead)")
    p.add_argument("--steps", type=int, help="fix the number of training steps (optim.steps)")
    p.add_argument("--jobs", type=int, metavar="J",
                   help="trainings at once, each with cores/J torch threads (default: 2 on 2+ cores, measured)")
    p.add_argument("--sampler-seed", type=int, default=0, metavar="S", help="seed of the random search (default 0)")
    p.add_argument("--out", metavar="DIR", help="search folder (default runs/tune-<dataset>)")
    _add_device_and_data(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_plot(commands: Any) -> None:
    p = commands.add_parser(
        "plot", help="draw training curves, spectra and WERank sweeps as PNGs",
        description="From run folders: loss, WERank term, RankMe and validation accuracy against the step "
                    "(curves.png, from log.csv, runs overlaid; a run still training too), the final embedding "
                    "spectrum (runs overlaid) and each run's weight spectra over training. From bench folders: "
                    "accuracy and RankMe against the WERank coefficient.")
    p.add_argument("folders", nargs="+", metavar="RUN_DIR", help="run or bench folders")
    p.add_argument("--out", metavar="DIR", help="where the PNGs go (default: RUN_DIR/plots, or plots/ for several)")


def _add_toy(commands: Any) -> None:
    p = commands.add_parser(
        "toy", help="the WERank paper's synthetic collapse experiments (linear networks, Gaussian data)",
        description="Train an L-layer linear network on 1000 whitened 16-d Gaussian points with two noisy views "
                    "(noise of variance k on the last 8 coordinates), under InfoNCE, VICReg or an EMA "
                    "student-teacher, with or without WERank; write spectra.json and spectra.png. --sweep runs the "
                    "grid of the paper's figures and writes figures, table.md and README.md.")
    p.add_argument("--loss", choices=TOY_LOSSES, default="vicreg", help="the self-supervised loss (default vicreg)")
    p.add_argument("--layers", type=int, default=2, help="depth L of the linear network (default 2)")
    p.add_argument("--werank", type=float, default=0.1, help="WERank coefficient on every layer (0: off; default 0.1)")
    p.add_argument("--k", type=float, default=0.1, help="augmentation strength: noise variance (default 0.1)")
    p.add_argument("--epochs", type=int, default=1000,
                   help="full-batch epochs (default 1000; the paper's figures: 5000)")
    p.add_argument("--lr", type=float, help="learning rate (default: infonce 0.1, vicreg 0.01, ema 0.01)")
    p.add_argument("--seed", type=int, default=0, help="random seed of data, noise and weights (default 0)")
    p.add_argument("--sweep", action="store_true", help="run the whole grid (3 losses x WERank on/off x depths and k)")
    p.add_argument("--losses", nargs="+", choices=TOY_LOSSES, default=list(TOY_LOSSES), metavar="LOSS",
                   help=f"with --sweep: the losses to sweep (default all: {', '.join(TOY_LOSSES)})")
    p.add_argument("--out", default="runs/toy", metavar="DIR",
                   help="folder for spectra.json and its figure, or the sweep's (default runs/toy)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _werank_value(text: str) -> Any:
    """One ``--werank`` value of bench: a number or a per-layer list, read as YAML."""
    return without_negative_zeros(read_yaml(text, f"--werank {text!r}"))


def build_parser() -> argparse.ArgumentParser:
    """The ``graphssl`` argument parser, with one sub-command per job (train, eval, bench, tune, plot, toy).

    Returns:
        The parser; bad arguments raise :class:`GraphSSLError` instead of exiting.

    Example:
        >>> build_parser().parse_args(["train", "--dataset", "cora", "--werank", "0.1"]).werank
        [0.1]
    """
    parser = _Parser(prog="graphssl", description="Graph self-supervised learning (BGRL, GRACE, VICReg, CCA-SSG) "
                                                  "with WERank.")
    parser.add_argument("--version", action="version", version=f"graphssl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    _add_train(commands)
    _add_eval(commands)
    _add_bench(commands)
    _add_tune(commands)
    _add_plot(commands)
    _add_toy(commands)
    return parser


# Flags that set one config key each (train and tune), in the order they are applied after --set.
_KEY_FLAGS = (("method", "method"), ("werank", "werank.alpha"), ("steps", "optim.steps"), ("seed", "train.seed"),
              ("checkpoint_every", "train.checkpoint_every"), ("batch_size", "train.batch_size"),
              ("num_neighbors", "train.num_neighbors"), ("tensorboard", "train.tensorboard"),
              ("precision", "train.precision"))


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--set`` values, then one per key flag given (``--werank 0.1`` sets ``werank.alpha`` to 0.1)."""
    overrides = dict(parse_assignment(text) for text in args.assignments)
    for name, key in _KEY_FLAGS:
        value = getattr(args, name, None)
        if value is not None:
            if isinstance(value, list):
                value = value[0] if name == "werank" and len(value) == 1 else list(value)
            overrides[key] = value
    return overrides


def _train_config(args: argparse.Namespace, dataset: str) -> dict[str, Any]:
    return load_config(args.config if args.config is not None else config_for_dataset(dataset), _overrides(args))


def _then(error: WriteFailed, step: str) -> WriteFailed:
    """``error`` (a write that failed) with what to do once its cause is fixed."""
    return WriteFailed(f"{error}; once that is fixed, {step}")


def _cmd_train(args: argparse.Namespace) -> int:
    if args.resume is not None:
        fixed = [flag for flag, value in (("--dataset", args.dataset), ("--config", args.config),
                                          ("--set", args.assignments), ("--method", args.method),
                                          ("--werank", args.werank),
                                          ("--steps", args.steps), ("--seed", args.seed), ("--out", args.out),
                                          ("--checkpoint-every", args.checkpoint_every),
                                          ("--batch-size", args.batch_size), ("--num-neighbors", args.num_neighbors),
                                          ("--tensorboard", args.tensorboard), ("--precision", args.precision))
                 if value is not None and value != []]
        if fixed:
            raise GraphSSLError(f"--resume continues a run with its own settings; drop {', '.join(fixed)}")
        out = run_folder_path(args.resume, "--resume")
    else:
        if args.dataset is None:
            raise GraphSSLError("graphssl train: --dataset is required (or --resume RUN_DIR); "
                                "see 'graphssl train --help'")
        dataset = dataset_name(args.dataset)
        config = _train_config(args, dataset)
        # Imported once the flags and config are known good: torch takes seconds to load, a typo's error should not.
        from .run_folder import default_run_dir

        # Named here to say where to resume after a failed write; under torchrun rank 0's name is the one used.
        out = Path(args.out) if args.out is not None else default_run_dir(dataset, config)
    from .pipeline import resume_training, run_training
    try:
        if args.resume is not None:
            result = resume_training(out, data_root=args.data_root, device=args.device, progress=not args.quiet,
                                     distributed_job=args.distributed)
        else:
            result = run_training(dataset, config, data_root=args.data_root, out_dir=out, device=args.device,
                                  progress=not args.quiet, distributed_job=args.distributed)
    except WriteFailed as error:
        raise _then(error, f"continue from the last checkpoint with: graphssl train --resume {out}"
                    if os.path.isfile(out / CHECKPOINT) else
                    "train again into a new --out (no checkpoint was written)") from None
    if result is not None:  # other ranks of a distributed job stay quiet
        print(summary(result.metrics, result.out_dir))
    return 0


def _probe_choice(metrics: dict[str, Any]) -> str:
    return f"probe L2 {metrics['probe_l2']:g}" if "probe_l2" in metrics else f"probe C {metrics['probe_c']:g}"


def summary(metrics: dict[str, Any], out_dir: Any) -> str:
    """The lines ``graphssl train`` prints for a finished run.

    Returns:
        Four lines of text.

    Example:
        >>> print(summary(result.metrics, result.out_dir))  # doctest: +SKIP
    """
    final = metrics.get("final_werank_alpha", metrics["werank"])  # moved under werank.schedule: adaptive
    alpha = f"{metrics['werank']}" + (f" (final {final:.3g})" if final != metrics["werank"] else "")
    return (f"{metrics['dataset']}  method={metrics['method']}  werank={alpha}  seed={metrics['seed']}  "
            f"steps={metrics['steps']}\n"
            f"  test acc {100 * metrics['test_acc']:.2f}%  (val {100 * metrics['val_acc']:.2f}%, "
            f"{_probe_choice(metrics)})\n"
            f"  rank {metrics['rank']}/{metrics['embedding_dim']}  RankMe {metrics['rankme']:.1f}  "
            f"mean pair cosine {metrics['mean_pair_cosine']:.3f}\n"
            f"  trained in {metrics['train_seconds']:.1f} s: {metrics['ms_per_step']:.1f} ms per step, plus "
            f"{_measuring_seconds(metrics):.1f} s outside the steps (spectra, probes, logs, checkpoints)  ->  "
            f"{out_dir}")


def _measuring_seconds(metrics: dict[str, Any]) -> float:
    """The part of a run's training time spent outside its steps (ms_per_step times only the steps)."""
    return max(0.0, metrics["train_seconds"] - metrics["ms_per_step"] * metrics["steps"] / 1000)


def _print_eval(metrics: dict[str, Any]) -> None:
    print(f"{metrics['dataset']}: test acc {100 * metrics['test_acc']:.2f}%  (val {100 * metrics['val_acc']:.2f}%, "
          f"{_probe_choice(metrics)})  rank {metrics['rank']}/{metrics['embedding_dim']}  "
          f"RankMe {metrics['rankme']:.1f}  mean pair cosine {metrics['mean_pair_cosine']:.3f}")


def _cmd_eval(args: argparse.Namespace) -> int:
    if args.embeddings is not None:
        if args.run_dir is not None or args.dataset is None or args.save_embeddings is not None:
            raise GraphSSLError("graphssl eval: give either RUN_DIR (with --save-embeddings if wanted), or "
                                "--embeddings FILE with --dataset NAME")
        from .linear_eval import evaluate_embedding_file, metrics_file

        _print_eval(evaluate_embedding_file(args.embeddings, args.dataset, data_root=args.data_root,
                                            config=args.config, out=args.out))
        print(f"metrics written to {metrics_file(args.embeddings, args.out)}")
        return 0
    if args.run_dir is None:
        raise GraphSSLError("graphssl eval: give a RUN_DIR, or --embeddings FILE --dataset NAME")
    check_run_folder(args.run_dir, "graphssl eval")
    from .linear_eval import evaluate_run, metrics_file

    save = None if args.save_embeddings is None else (args.save_embeddings or f"{args.run_dir}/embeddings.pt")
    metrics = evaluate_run(args.run_dir, data_root=args.data_root, device=args.device, save_embeddings=save,
                           out=args.out)
    _print_eval(metrics)
    print(f"metrics written to {metrics_file(args.run_dir, args.out)}")
    if save:
        print(f"embeddings written to {save}")
    return 0


RUN_AGAIN = "run the same command again: it keeps what finished and continues"


def _cmd_bench(args: argparse.Namespace) -> int:
    # A typo's error should not wait for torch to load (seconds): every run's config is checked here, with bench's
    # own settings (--steps, --methods, --werank, --set) applied, and run_bench checks the same again.
    plan_runs(args.datasets, methods=args.methods, weranks=args.werank, seeds=args.seeds, first_seed=args.first_seed,
              steps=args.steps, sweeps=args.sweeps, config=args.config)
    check_jobs(args.jobs)
    from .bench import run_bench

    try:
        rows = run_bench(args.datasets, args.out, methods=args.methods, weranks=args.werank, seeds=args.seeds,
                         first_seed=args.first_seed, steps=args.steps, sweeps=args.sweeps, config=args.config,
                         data_root=args.data_root, device=args.device, jobs=args.jobs, progress=not args.quiet)
    except WriteFailed as error:
        raise _then(error, RUN_AGAIN) from None
    print(open(f"{args.out}/table.md").read().rstrip())
    print(f"{len(rows)} settings -> {args.out}/table.md, {args.out}/table.csv")
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    dataset = dataset_name(args.dataset)
    space = read_space(*args.space)
    fixed = _overrides(args)
    clash = [key for key in fixed if key in space]
    if clash:
        raise GraphSSLError(f"{', '.join(clash)} is both searched (--space) and fixed (a flag or --set); "
                            f"drop one of the two")
    base = load_config(args.config or config_for_dataset(dataset), fixed)
    check_search(space, base, args.trials, args.seeds)
    check_jobs(args.jobs)
    # Imported once the dataset, space, config, search size and --jobs are known good: torch takes seconds to load.
    from .tune import run_tune, validation_text

    out = args.out or f"runs/tune-{dataset}"
    try:
        result = run_tune(dataset, space, base, out, trials=args.trials, seeds=args.seeds, jobs=args.jobs,
                          sampler_seed=args.sampler_seed, data_root=args.data_root, device=args.device,
                          progress=not args.quiet, command=args.command_line)
    except WriteFailed as error:
        raise _then(error, RUN_AGAIN) from None
    if result.best is None:  # every trial diverged: nothing to choose, as a diverged train run says
        raise DivergenceError(f"every trial diverged (a non-finite loss or WERank term), so none was chosen; "
                              f"narrow the space (e.g. a lower optim.lr or werank.alpha): {out}/trials.md")
    row = result.best.row()
    print(f"best trial {result.best.name}: validation accuracy {validation_text(row)} over {row['seeds']} "
          f"seed{'s' if row['seeds'] != 1 else ''}")
    for key, value in result.best.values.items():
        print(f"  {key} = {json.dumps(value)}")
    print(f"-> {out}/best.yaml (use with --config), {out}/trials.md, {out}/trials.csv")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from .plot import plot

    for path in plot(args.folders, args.out):
        print(path)
    return 0


def _cmd_toy(args: argparse.Namespace) -> int:
    import torch

    from .toy import ToyConfig, run_sweep, run_toy, summary

    torch.set_num_threads(1)  # 16 x 16 matrices: threads only add overhead
    if args.sweep:
        print(f"sweep written: {run_sweep(args.out, args.epochs, args.seed, progress=not args.quiet, losses=args.losses)}")
        return 0
    config = ToyConfig(args.loss, args.layers, args.werank, args.k, args.epochs, args.lr, args.seed)
    result = run_toy(config, args.out)
    measured = summary(result["final"])
    print(f"{config.name}: embedding singular values above 0.1 of the largest: {measured['embedding_above_0.1']}/16, "
          f"smallest weight singular value {measured['min_weight_sv']:.3f}, "
          f"RMS(weight SV - 1) {measured['weight_distance_from_1']:.3f}  ->  {args.out}")
    return 0


COMMANDS = {"train": _cmd_train, "eval": _cmd_eval, "bench": _cmd_bench, "tune": _cmd_tune, "plot": _cmd_plot,
            "toy": _cmd_toy}


HUGE_PAGES = "THP_MEM_ALLOC_ENABLE"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``graphssl`` command with ``argv`` (default: the process's arguments).

    Returns:
        The exit status: 0, or 2 for bad input (3: a diverged run, 130: interrupted), after one line on stderr.

    Example:
        >>> main(["train", "--dataset", "imagenet"])  # doctest: +SKIP
        graphssl: error: unknown dataset 'imagenet'; choose one of: cora, citeseer, pubmed, ogbn-arxiv, synthetic-arxiv
        2
    """
    # Large activations (169k x 256 floats on ogbn-arxiv) are mmapped afresh at every step and faulted in 4 KiB
    # pages; torch's CPU allocator backs allocations >= 2 MiB with transparent huge pages when this is set before
    # its first allocation (52x fewer page faults, 17.4 -> 10.0 s per full-batch arxiv-size step; README, 'Memory
    # at arxiv size'). This module imports no torch, so nothing has allocated yet; a user's own setting wins.
    os.environ.setdefault(HUGE_PAGES, "1")
    silence_known_warnings()
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
        args.command_line = "graphssl " + shlex.join(argv)  # recorded by tune in what it writes
        return COMMANDS[args.command](args)
    except GraphSSLError as err:
        print(f"graphssl: error: {one_line(str(err))}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("graphssl: interrupted", file=sys.stderr)
        return 130


def one_line(message: str) -> str:
    r"""``message`` on one line: line breaks a user put in a file name or flag are shown escaped, as ``\n``.

    Returns:
        The message without line breaks.

    Example:
        >>> print(one_line("--config no\nsuch.yaml: cannot read it"))
        --config no\nsuch.yaml: cannot read it
    """
    return message.replace("\r", "\\r").replace("\n", "\\n")
