r"""WERank's coefficient adapted during training to the measured rank of the embeddings.

``werank.schedule: constant`` (the default) keeps ``werank.alpha`` for the whole
run.  ``werank.schedule: adaptive`` starts from ``werank.alpha`` (one number) and,
every ``train.spectra_every`` steps, compares RankMe ``r`` of the current
full-graph embeddings with a target fraction ``τ`` of the embedding size ``d``:

.. math::
    \alpha \leftarrow \begin{cases}
        \operatorname{clip}(\alpha f, \alpha_{min}, \alpha_{max}) & r < \tau d
            \text{ (collapsing: push the weights harder towards orthogonality)} \\
        \operatorname{clip}(\alpha / f, \alpha_{min}, \alpha_{max}) & r > \tau d
            \text{ (rank to spare: leave more to the method's own loss)} \\
        \alpha & r = \tau d
    \end{cases}

with ``τ`` = ``werank.target_fraction``, ``f`` = ``werank.adapt_factor`` > 1 and
the bounds ``werank.alpha_min`` > 0 and ``werank.alpha_max``.  The steps are
multiplicative because useful coefficients span orders of magnitude (the Cora
search space runs from 1e-4 to 1); the bounds stop α running away when the target
cannot be met, and the lower bound above 0 keeps a way back up.  The state is the
current α alone: checkpointed, it makes a resumed run exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class AdaptiveAlpha:
    """The adaptive rule: call :meth:`update` with each RankMe measurement, read :attr:`alpha`.

    Args:
        alpha: the coefficient to start from (``werank.alpha``); it may lie outside the bounds, the first
            update clips it.
        target_fraction: ``τ``, the RankMe to hold as a fraction of ``embedding_dim``.
        factor: ``f`` > 1, the multiplicative step.
        alpha_min, alpha_max: the bounds, ``0 < alpha_min <= alpha_max``.
        embedding_dim: ``d``, the embedding size.

    Example:
        >>> rule = AdaptiveAlpha(0.1, target_fraction=0.5, factor=2.0, alpha_min=0.05, alpha_max=0.3,
        ...                      embedding_dim=128)
        >>> rule.update(rankme=40.0), rule.update(rankme=40.0), rule.update(rankme=90.0)  # target RankMe: 64
        (0.2, 0.3, 0.15)
    """

    alpha: float
    target_fraction: float
    factor: float
    alpha_min: float
    alpha_max: float
    embedding_dim: int

    @classmethod
    def from_config(cls, config: dict[str, Any], embedding_dim: int) -> AdaptiveAlpha:
        """The rule with a config's ``werank`` settings (validated: one starting coefficient).

        Returns:
            A new rule at ``werank.alpha``.

        Example:
            >>> from graphssl.config import load_config
            >>> config = load_config(None, {"werank.alpha": 0.1, "werank.schedule": "adaptive"})
            >>> AdaptiveAlpha.from_config(config, embedding_dim=128).alpha
            0.1
        """
        werank = config["werank"]
        return cls(float(werank["alpha"]), werank["target_fraction"], werank["adapt_factor"], werank["alpha_min"],
                   werank["alpha_max"], embedding_dim)

    def update(self, rankme: float) -> float:
        """Move α by one step from the embeddings' measured ``rankme``.

        Returns:
            The new α, for the steps until the next measurement.
        """
        target = self.target_fraction * self.embedding_dim
        if rankme < target:
            self.alpha *= self.factor
        elif rankme > target:
            self.alpha /= self.factor
        self.alpha = min(max(self.alpha, self.alpha_min), self.alpha_max)
        return self.alpha

    def state_dict(self) -> dict[str, float]:
        """What a checkpoint keeps: the current α (the constants come from the run's config)."""
        return {"alpha": self.alpha}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.alpha = float(state["alpha"])
