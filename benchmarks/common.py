"""What the benchmark scripts share: running a command from the repository root, one training's metrics, graphssl
as it was at an earlier git revision, and the pieces of a training step."""

from __future__ import annotations

import importlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NoReturn, Sequence

from graphssl.cli import HUGE_PAGES  # imports no torch
from graphssl.errors import reason
from graphssl.files import read_json

# As the graphssl command does (README, 'Memory at arxiv size'): scripts import this module before torch, whose
# allocator reads it at its first allocation.
os.environ.setdefault(HUGE_PAGES, "1")

REPO = Path(__file__).resolve().parents[1]
GRAPHSSL = (sys.executable, "-m", "graphssl")
# torchrun on this machine, with a port the OS picks (no free-port guess that another process could take first).
TORCHRUN = (sys.executable, "-m", "torch.distributed.run", "--standalone")


def run(command: Sequence[str]) -> str:
    """Run ``command`` in the repository root; returns its stdout, or exits with its stderr when it fails."""
    proc = subprocess.run(_shown(command), cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return proc.stdout


def run_visible(command: Sequence[str]) -> None:
    """Run ``command`` in the repository root with its output shown as it comes (long sweeps show their
    progress); exits with its status when it fails."""
    _exit_if_failed(subprocess.run(_shown(command), cwd=REPO, stdin=subprocess.DEVNULL).returncode)


def run_graphssl(argv: Sequence[Any]) -> None:
    """:func:`run_visible` of ``graphssl ARGV``, run in this process by ``graphssl.cli.main`` (the working folder
    is the repository root during the call and restored after). For scripts that call graphssl many times: a new
    process would load torch and torch_geometric again each time, about 5 s (bench's ``--jobs`` workers still
    load them once per call)."""
    from graphssl.cli import main

    argv = _shown(["graphssl", *argv])[1:]
    previous = os.getcwd()
    os.chdir(REPO)
    try:
        status = main(argv)
    finally:
        sys.stdout.flush()  # each call's tables in a log before the next call's command line, as a child's were
        os.chdir(previous)
    _exit_if_failed(status)


def _shown(command: Sequence[Any]) -> list[str]:
    """``command`` as strings, after printing it on stderr as the line one would type."""
    command = list(map(str, command))
    print("$", " ".join(command), file=sys.stderr, flush=True)
    return command


def _exit_if_failed(status: int) -> None:
    if status != 0:
        raise SystemExit(status)


def fail(message: str) -> NoReturn:
    """End a script on bad input as graphssl ends a command: one line naming the problem and the fix, status 2."""
    print(f"{Path(sys.argv[0]).name}: {message}", file=sys.stderr)
    raise SystemExit(2)


def bench_results(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every result of the ``graphssl bench`` folder ``folder`` with its path; one that is not as bench wrote it
    (truncated, edited) ends the script (:func:`fail`), where bench itself would train that run again."""
    from graphssl.bench import is_result  # imports torch: only for the scripts that read results

    results = []
    for path in sorted((folder / "results").glob("*.json")):
        try:
            result = read_json(path)
        except (OSError, ValueError) as err:
            fail(f"{path} is unreadable ({reason(err)}); run the bench command that wrote it again (it retrains that run)")
        if not is_result(result):
            fail(f"{path} is not a result of graphssl bench (edited?); run the bench command that wrote it again "
                 f"(it retrains that run)")
        results.append((path, result))
    return results


def report(result: dict[str, Any], out: str | Path | None) -> None:
    """Print a benchmark's result as JSON and, when ``out`` is given, also write it there (folders made)."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")


def train_metrics(args: Sequence[str], launcher: Sequence[str] = GRAPHSSL) -> dict:
    """metrics.json of ``graphssl train ARGS`` in a temporary folder, without spectra or checkpoints (they would be
    timed with the steps)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        run([*launcher, "train", *args, "--quiet", "--set", "train.spectra_every=0",
             "--set", "train.checkpoint_every=0", "--out", str(out)])
        return json.loads((out / "metrics.json").read_text())


def graphssl_at(revision: str | None) -> SimpleNamespace:
    """What a training step needs from graphssl: this checkout's (``revision`` None), or the package as it was
    at git ``revision``, extracted (with its configs) to a temporary folder and imported beside this one as
    ``graphssl_at_revision`` (the package imports itself only relatively, so renaming it is enough).

    Returns:
        ``load_config``, ``config_for_dataset``, ``parse_assignment``, ``load_graph``, ``build_model``,
        ``Pretrainer`` and ``resolve_device`` of that graphssl.
    """
    name = "graphssl"
    if revision is not None:
        folder = Path(tempfile.mkdtemp(prefix="graphssl-revision-"))
        archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "graphssl", "configs"],
                                 capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        name = "graphssl_at_revision"
        (folder / "graphssl").rename(folder / name)
        sys.path.insert(0, str(folder))
    module = {part: importlib.import_module(f"{name}.{part}")
              for part in ("config", "data", "model", "train", "devices")}
    return SimpleNamespace(load_config=module["config"].load_config,
                           config_for_dataset=module["config"].config_for_dataset,
                           parse_assignment=module["config"].parse_assignment, load_graph=module["data"].load_graph,
                           build_model=module["model"].build_model, Pretrainer=module["train"].Pretrainer,
                           resolve_device=module["devices"].resolve_device)


def step_config(graphssl: SimpleNamespace, dataset: str, config: str | None, assignments: Sequence[str],
                overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The config of a benchmark's trainer: ``--config`` (default the dataset's), ``--set`` values, then
    ``overrides``."""
    path = config or graphssl.config_for_dataset(dataset)
    return graphssl.load_config(path, {**dict(graphssl.parse_assignment(a) for a in assignments),
                                       **(overrides or {})})


def trainer(graphssl: SimpleNamespace, graph: Any, config: dict[str, Any], device: Any) -> Any:
    """A fresh Pretrainer of ``config`` (model seeded with ``train.seed``)."""
    import torch

    torch.manual_seed(config["train"]["seed"])
    return graphssl.Pretrainer(graphssl.build_model(config, graph.num_features).to(device), graph, config, device)


def timed_block(trainer: Any, steps: int, first_step: int) -> tuple[float, float]:
    """Run ``steps`` training steps; returns (wall ms per step, process CPU ms per step). CPU time leaves out the
    time other jobs held the cores, so on a shared machine it is the steadier of the two (for one thread)."""
    import time

    import torch

    cuda = trainer.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(trainer.device)
    wall, cpu = time.perf_counter(), time.process_time()
    for step in range(first_step, first_step + steps):
        trainer.step(step)
    if cuda:
        torch.cuda.synchronize(trainer.device)
    return 1000 * (time.perf_counter() - wall) / steps, 1000 * (time.process_time() - cpu) / steps


def machine() -> dict[str, Any]:
    """What a timing depends on: cores, torch threads, CPU vector capability, load when it was measured."""
    import os

    import torch

    return {"cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "load_average_1min": round(os.getloadavg()[0], 2), "torch": torch.__version__}
