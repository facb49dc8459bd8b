"""Full-depth evaluation of a trainable state: on the run's evaluation subset, or on a device's local
held-out examples (personalized accuracy)."""

from __future__ import annotations

import torch

from fleetsim.core.evaluation import EvalResult
from fleetsim.train.data import Split, Task
from fleetsim.train.models import ModelBundle

__all__ = ["Evaluator"]


class Evaluator:
    """Accuracy and loss of the model with a given trainable state, every block active, at fp32, on the
    device the model is on."""

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
        correct, loss_sum, n = 0, 0.0, len(test)
        for start in range(0, n, self.batch_size):
            sl = slice(start, start + self.batch_size)
            labels = test.labels[sl]
            logits = model(
                input_ids=test.input_ids[sl, : self.seq_len],
                attention_mask=test.attention_mask[sl, : self.seq_len],
            ).logits
            loss_sum += float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))
            correct += int((logits.argmax(-1) == labels).sum())
        return EvalResult(accuracy=correct / n, loss=loss_sum / n, n_examples=n)
