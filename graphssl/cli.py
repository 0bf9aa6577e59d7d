"""The ``graphssl`` command: a thin layer over the Python API.

Every user error ends in one line on stderr and exit status 2 (3 for a
diverged run), never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any, Sequence

from .config import config_for_dataset, load_config
from .errors import GraphSSLError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise GraphSSLError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _add_train(commands: Any) -> None:
    p = commands.add_parser(
        "train", help="pre-train BGRL (+ WERank) on a graph, then probe and rank the embeddings",
        description="Pre-train BGRL with the WERank regularizer on the encoder weights, evaluate the frozen "
                    "encoder with a linear probe, report test accuracy and embedding rank, and write a run folder "
                    "(config.yaml, checkpoint.pt, metrics.json, spectra.json).",
        epilog="Precedence: built-in defaults < --config YAML < --set < the flags above. "
               "Example: graphssl train --dataset cora --werank 0.1 --set optim.lr=0.002")
    p.add_argument("--dataset", required=True, help="cora, citeseer or pubmed")
    p.add_argument("--config", metavar="YAML",
                   help="config file (default: configs/<dataset>.yaml if it exists, else configs/cora.yaml)")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, dotted (e.g. optim.lr=0.001, encoder.layers=[256,256]); repeatable")
    p.add_argument("--werank", type=float, nargs="+", metavar="ALPHA",
                   help="WERank coefficient: one for every encoder layer, or one per layer (0 = plain BGRL)")
    p.add_argument("--steps", type=int, help="number of training steps (optim.steps)")
    p.add_argument("--seed", type=int, help="random seed (train.seed)")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1 ...")
    p.add_argument("--data-root", metavar="DIR", help="dataset folder (default: $GRAPHSSL_DATA, else ./data)")
    p.add_argument("--out", metavar="DIR", help="run folder to create (default: a new folder under runs/)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="graphssl", description="Graph self-supervised learning (BGRL) with WERank.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    _add_train(commands)
    return parser


def _train_config(args: argparse.Namespace) -> dict[str, Any]:
    path = args.config if args.config is not None else (config_for_dataset(args.dataset.lower())
                                                         or config_for_dataset("cora"))
    flags = list(args.assignments)
    if args.werank is not None:
        flags.append(f"werank.alpha={args.werank[0] if len(args.werank) == 1 else list(args.werank)}")
    if args.steps is not None:
        flags.append(f"optim.steps={args.steps}")
    if args.seed is not None:
        flags.append(f"train.seed={args.seed}")
    return load_config(path, flags)


def _cmd_train(args: argparse.Namespace) -> int:
    from .data import DATASETS
    from .train import run_training

    if args.dataset.lower() not in DATASETS:
        raise GraphSSLError(f"unknown dataset '{args.dataset}'; choose one of: {', '.join(DATASETS)}")
    config = _train_config(args)
    result = run_training(args.dataset.lower(), config, data_root=args.data_root, out_dir=args.out,
                          device=args.device, progress=not args.quiet)
    print(summary(result.metrics, result.out_dir))
    return 0


def summary(metrics: dict[str, Any], out_dir: Any) -> str:
    return (f"{metrics['dataset']}  werank={metrics['werank']}  seed={metrics['seed']}  steps={metrics['steps']}\n"
            f"  test acc {100 * metrics['test_acc']:.2f}%  (val {100 * metrics['val_acc']:.2f}%, "
            f"probe L2 {metrics['probe_l2']:g})\n"
            f"  rank {metrics['rank']}/{metrics['embedding_dim']}  RankMe {metrics['rankme']:.1f}  "
            f"mean pair cosine {metrics['mean_pair_cosine']:.3f}\n"
            f"  trained in {metrics['train_seconds']:.1f} s ({metrics['ms_per_step']:.1f} ms/step)  ->  {out_dir}")


COMMANDS = {"train": _cmd_train}


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
    warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except GraphSSLError as err:
        print(f"graphssl: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("graphssl: interrupted", file=sys.stderr)
        return 130
