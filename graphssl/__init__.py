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

__version__ = "0.1.0"
