"""Reading run folders in tests."""

import json

TIMING_KEYS = {"train_seconds", "ms_per_step", "probe_seconds", "peak_rss_mb"}


def comparable(run_dir):
    """A run's metrics.json without the timings and memory figures, which vary between identical runs."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k not in TIMING_KEYS}
