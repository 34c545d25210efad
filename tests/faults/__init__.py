"""The fault-injection suite (issue 6): real sockets, subprocesses, property-based tests.

Run it alone with `.venv/bin/python -m pytest tests/faults`; docs/reliability.md lists every fault and
what the user sees.
"""
