"""fleetsim's version (one place; the package and every output that records it read it from here)."""

__all__ = ["VERSION"]

VERSION = "0.1.0"
