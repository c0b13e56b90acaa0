"""The store fixtures (both backends, the fake clock) for the escalation store tests."""

from tests.store.conftest import backend, clock, store

__all__ = ["backend", "clock", "store"]
