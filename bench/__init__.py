"""Benchmark of sms-bridge: ``python -m bench.run`` drives the real app over signed HTTP.

Not part of the test suite and not run in CI: the numbers depend on the machine.
"""
