"""Client selection: which of a round's trainable candidates train. A registered choice (``selection.name``)."""

from fleetsim.policy.selection import deadline_aware, oort, uniform  # noqa: F401  (registers the selectors)
from fleetsim.policy.selection.base import SELECTORS, SelectionInput, Selector, make_selector, uniform_sample

__all__ = ["SELECTORS", "SelectionInput", "Selector", "make_selector", "uniform_sample"]
