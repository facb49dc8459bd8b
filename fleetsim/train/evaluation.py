"""Full-depth evaluation of a trainable state: on the run's evaluation subset, or on a device's local
held-out examples (personalized accuracy); scored by the model's objective (:mod:`.objectives`)."""

from __future__ import annotations

import torch

from fleetsim.core.evaluation import EvalResult
from fleetsim.train.data import Split, Task
from fleetsim.train.models import ModelBundle

__all__ = ["Evaluator"]


class Evaluator:
    """Accuracy and loss (and a language model's perplexity) of the model with a given trainable state,
    every block active, at fp32, on the device the model is on."""

    def __init__(self, bundle: ModelBundle, task: Task, batch_size: int, seq_len: int):
        self.bundle = bundle
        self.task = task
        self.batch_size = batch_size
        self.seq_len = seq_len

    def evaluate(self, state: dict[str, torch.Tensor], split: Split | None = None) -> EvalResult:
        """Evaluate ``state`` on ``split`` (default: the run's evaluation subset)."""
        self.bundle.load_state(state)
        return self._run(self.task.test if split is None else split)

    def evaluate_local(self, state: dict[str, torch.Tensor], device_id: int) -> EvalResult:
        """Evaluate ``state`` on the device's local held-out examples (drawn with its label mix)."""
        return self.evaluate(state, self.task.local_test(device_id))

    @torch.inference_mode()
    def _run(self, test: Split) -> EvalResult:
        model = self.bundle.model
        model.eval()
        test = test.to(self.bundle.device)
        goal = self.bundle.objective
        correct, loss_sum, n = 0, 0.0, 0
        for start in range(0, len(test), self.batch_size):
            rows = torch.arange(start, min(start + self.batch_size, len(test)), device=test.labels.device)
            logits = model(
                input_ids=test.input_ids[rows, : self.seq_len],
                attention_mask=test.attention_mask[rows, : self.seq_len],
            ).logits
            batch = goal.score(logits, goal.targets(test, rows, self.seq_len))
            loss_sum, correct, n = loss_sum + batch.loss_sum, correct + batch.correct, n + batch.count
        loss = loss_sum / n
        return EvalResult(accuracy=correct / n, loss=loss, n_examples=n, perplexity=goal.perplexity(loss))
