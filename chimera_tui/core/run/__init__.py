"""Orchestration: the runners (single, multi-agent, workflow, sweep) and the events they emit."""
