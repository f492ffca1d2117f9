"""Which evaluation is the best so far (checkpoints/best/ is written when it improves)."""
from __future__ import annotations

from ..errors import CheckpointError
from . import layout
from .state_json import read_state


class Best:
    """Which evaluation is the best so far: by train.eval_metric of the run's extractor, carried over
    from checkpoints/best/ of an earlier start if that was chosen by the same score."""

    def __init__(self, run_dir: str, metric: str, extractor_name: str, lower_is_better: bool):
        self.key, self.lower = f"{metric}_{extractor_name}", lower_is_better
        self.value = None
        try:
            info = read_state(layout.best_dir(run_dir), verify=False).get("eval", {})
            self.value = info.get("value") if info.get("metric") == self.key else None
        except CheckpointError:
            pass

    def improved(self, scores: dict[str, float]) -> bool:
        value = scores[self.key]
        if self.value is not None and (value >= self.value if self.lower else value <= self.value):
            return False
        self.value = value
        return True
