"""graphssl: graph self-supervised learning (BGRL, GRACE, VICReg, CCA-SSG) with the WERank regularizer.

The modules, in the direction their imports run (each imports only from entries
before it):

* ``errors``, ``locks``, ``config``, ``parallel``, ``search_space``, ``bench_grid``,
  ``tables``, ``files``, ``run_layout``: errors a user can act on; locks that keep two processes
  off one run folder or dataset; the config schema, the shipped config files and
  the dataset and device names; several trainings at once (torch loads only in its worker
  processes); ``tune``'s search spaces and the points a search tries;
  ``bench``'s grid of runs and their configs; mean ± std over seeds and CSV
  text; the one atomic writer every output goes through, output folders, and
  what an OS error means to a user; a run folder's file names and the check that a
  folder is one (none of them imports torch, so the command line checks its input
  before torch loads).
* ``precision``, ``sparse``: float32, bfloat16 mixed precision and TF32 (autocast, the
  float32 parts of a step); the sparse-dense products of GCN propagation and sparse features.
* ``data``, ``augment``, ``sampling``: graphs with their splits; the two views;
  mini-batches of sampled neighbourhoods.
* ``encoders``: the GCN encoder and the predictor.
* ``bgrl``, ``grace``, ``vicreg``, ``cca_ssg``, ``regularizers``, ``schedulers``,
  ``werank_schedule``: the objectives (BGRL with its EMA target; GRACE, VICReg
  and CCA-SSG on two views' embeddings), WERank (usable on any module), the EMA /
  learning-rate schedules, and WERank's coefficient adapted to the measured rank.
* ``model``: a model and its WERank built from a config; methods chosen by name
  (and the two-view model GRACE, VICReg and CCA-SSG share).
* ``devices``, ``probe``, ``rank``, ``evaluate``: device choice and memory; the
  linear probe, rank metrics, spectra, and a run's metrics assembled (below the
  training loop, which records spectra while it trains).
* ``run_folder``, ``training_log``: run folders named, created, written atomically
  and read back; the per-step log of a run (``log.csv``, TensorBoard).
* ``distributed``, ``train``: torchrun jobs; the training loop (every method's step).
* ``pipeline``: whole runs (folder, loop, evaluation), the API of ``graphssl train``.
* ``linear_eval``, ``bench``, ``tune``, ``plot``, ``toy``:
  re-evaluation, grids of trainings and their tables, searches, figures, and the
  synthetic collapse experiments.
* ``cli``: the ``graphssl`` command, a thin layer over the above.

Importing graphssl changes nothing in the caller's environment; the ``graphssl``
command sets ``THP_MEM_ALLOC_ENABLE`` for itself (:func:`graphssl.cli.main`).
"""

__version__ = "0.1.0"
