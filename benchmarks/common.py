"""What the benchmark scripts share: running a command from the repository root, and one training's metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]
GRAPHSSL = (sys.executable, "-m", "graphssl")
# torchrun on this machine, with a port the OS picks (no free-port guess that another process could take first).
TORCHRUN = (sys.executable, "-m", "torch.distributed.run", "--standalone")


def run(command: Sequence[str]) -> str:
    """Run ``command`` in the repository root; returns its stdout, or exits with its stderr when it fails."""
    print("$", " ".join(map(str, command)), file=sys.stderr, flush=True)
    proc = subprocess.run(list(map(str, command)), cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return proc.stdout


def run_visible(command: Sequence[str]) -> None:
    """Run ``command`` in the repository root with its output shown as it comes (long sweeps show their
    progress); exits with its status when it fails."""
    print("$", " ".join(map(str, command)), file=sys.stderr, flush=True)
    status = subprocess.run(list(map(str, command)), cwd=REPO, stdin=subprocess.DEVNULL).returncode
    if status != 0:
        raise SystemExit(status)


def train_metrics(args: Sequence[str], launcher: Sequence[str] = GRAPHSSL) -> dict:
    """metrics.json of ``graphssl train ARGS`` in a temporary folder, without spectra or checkpoints (they would be
    timed with the steps)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        run([*launcher, "train", *args, "--quiet", "--set", "train.spectra_every=0",
             "--set", "train.checkpoint_every=0", "--out", str(out)])
        return json.loads((out / "metrics.json").read_text())
