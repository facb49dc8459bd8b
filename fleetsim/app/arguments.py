"""Argument types of the command line: each turns a typed value into what the command takes, or raises
``argparse.ArgumentTypeError`` with what was expected and what was typed (argparse prints it in one line)."""

from __future__ import annotations

import argparse
from typing import NoReturn

__all__ = ["OneLineParser", "number", "positive_int", "seed_list", "whole"]

EXIT_INPUT = 2  # a user's mistake


class OneLineParser(argparse.ArgumentParser):
    """argparse's mistakes as fleetsim's: one line, exit code 2 (``--help`` shows the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_INPUT, f"fleetsim: error: {self.prog}: {message} (see {self.prog} --help)\n")


def seed_list(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seeds as integers separated by commas, got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct seeds >= 0 separated by commas, got {text!r}")
    return seeds


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def whole(text: str) -> int:
    """An integer as typed (range checked by the command, so its error names the flag in one line)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
