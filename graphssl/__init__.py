"""graphssl: graph self-supervised learning (BGRL) with the WERank regularizer.

The modules, in the direction their imports run:

* ``data``, ``augment``: graphs with their splits; BGRL's views.
* ``encoders``: the GCN encoder and the predictor.
* ``bgrl``, ``regularizers``, ``schedulers``: the objective, WERank (usable on any
  module), and the EMA / learning-rate schedules.
* ``train``: the training loop and the run folder.
* ``probe``, ``rank``, ``evaluate``: linear probe, rank metrics, spectra.
* ``cli``: the ``graphssl`` command, a thin layer over the above.
"""

import os

# Large activations (169k x 256 floats on ogbn-arxiv) are mmapped fresh and faulted in 4 KiB pages on
# every allocation; torch's CPU allocator backs allocations >= 2 MiB with transparent huge pages when this
# is set before torch first allocates (measured: 52x fewer page faults, 17.4 s -> 10.0 s per full-batch
# arxiv-size step; README, 'Choices').
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

__version__ = "0.1.0"
