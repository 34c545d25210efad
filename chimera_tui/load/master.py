"""The Locust master process: `python -m chimera_tui.load.master CONFIG.json`.

Imports Locust (gevent monkey-patching): never import it from the core, the UI or the CLI process.
It waits for the workers, sends each the plan and its share of `--requests`, starts the users, and
writes ONE normal session (mode "load") from the records the workers send: appended in batches, at
most once a second, each write atomic (SessionWriter), so a crash keeps what had arrived. Snapshots
go to stdout as JSON lines (`{"type": "snapshot", ...}`), which the CLI prints as progress lines.
SIGTERM / SIGINT end the run early: the workers record what is still streaming as incomplete.
"""

from __future__ import annotations

import json
import signal
import socket
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import gevent
import locust
import locust.runners
from locust.env import Environment

from chimera_tui.core.store.manifest import LoadRecord, Manifest, drop_none
from chimera_tui.core.store.safe_read import read_text
from chimera_tui.core.store.sessions import RunRecord, SessionWriter
from chimera_tui.load.plan import MasterConfig, quotas
from chimera_tui.load.tally import Tally
from chimera_tui.load.worker import ChimeraUser

locust.runners.HEARTBEAT_LIVENESS = 30
#: seconds between two snapshots (and two session writes at most)
TICK_S = 1.0
#: after the grace time, how long to wait for the workers' last records
SETTLE_EXTRA_S = 15.0


#: the TUI's snapshot socket, when the config names one (connected in main)
_follower: socket.socket | None = None


def emit(doc: dict[str, Any]) -> None:
    """One JSON line on stdout for the CLI that started this process, and to the snapshot socket."""
    global _follower
    line = json.dumps(doc) + "\n"
    try:
        sys.stdout.write(line)
        sys.stdout.flush()
    except (OSError, ValueError):  # the parent is gone; the session on disk is what matters
        pass
    if _follower is not None:
        try:
            _follower.sendall(line.encode("utf-8"))
        except OSError:  # the TUI went away: the run goes on
            _follower.close()
            _follower = None


def follow(path: str) -> None:
    """Connect to the snapshot socket at `path` (a Unix socket the TUI listens on)."""
    global _follower
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5.0)
        sock.connect(path)
    except OSError as exc:
        print(f"chimera-tui load: cannot reach the snapshot socket {path}: {exc}", file=sys.stderr)
        return
    _follower = sock


class Master:
    """One load run, from the workers' connections to the finished session."""

    def __init__(self, config: MasterConfig) -> None:
        self.config = config
        self.plan = config.plan
        self.tally = Tally()
        self.buffer: list[RunRecord] = []
        self.done: dict[str, dict[str, Any]] = {}
        self.index = 0
        self.cancelled = False
        self.stop_sent = False
        self.env = Environment(user_classes=[ChimeraUser], events=locust.events)
        self.runner = self.env.create_master_runner(config.bind_host, config.bind_port)
        self.runner.register_message("chimera_records", self.on_records)
        self.runner.register_message("chimera_done", self.on_done)
        manifest = Manifest.from_dict(config.manifest)
        manifest.load = self._load_record()
        self.writer = SessionWriter(Path(config.sessions_root), manifest)

    def _load_record(self) -> LoadRecord:
        p = self.plan
        return LoadRecord(
            loop="open" if p.open_loop else "closed",
            users=p.users,
            spawn_rate=p.spawn_rate,
            rate=p.rate,
            duration_s=p.duration_s,
            requests=p.requests,
            workers=p.workers,
            grace_s=p.grace_s,
        )

    # -- messages from the workers -------------------------------------------------------------------
    def on_records(self, environment: Any, msg: Any, **_: Any) -> None:
        data = msg.data or {}
        now = time.monotonic()
        for raw in data.get("records") or []:
            record = RunRecord.from_dict({**raw, "index": self.index})
            self.index += 1
            self.buffer.append(record)
            self.tally.add(raw, now)
        self.tally.in_flight[msg.node_id] = int(data.get("in_flight") or 0)
        self.tally.started[msg.node_id] = int(data.get("started") or 0)

    def on_done(self, environment: Any, msg: Any, **_: Any) -> None:
        self.done[msg.node_id] = dict(msg.data or {})
        self.tally.started[msg.node_id] = int((msg.data or {}).get("started") or 0)
        self.tally.in_flight[msg.node_id] = 0

    # -- the run ------------------------------------------------------------------------------------------
    def save(self) -> None:
        if self.buffer:
            batch, self.buffer = self.buffer, []
            self.writer.add_runs(batch)

    def stop_workers(self, grace_s: float) -> None:
        if not self.stop_sent:
            self.stop_sent = True
            self.runner.send_message("chimera_stop", {"grace_s": grace_s})

    def cancel(self) -> None:
        self.cancelled = True
        self.stop_workers(min(2.0, self.plan.grace_s))

    def run(self) -> int:
        plan = self.plan
        emit({"type": "started", "session": str(self.writer.path), "id": self.writer.id})
        waited = time.monotonic()
        while self.runner.worker_count < plan.workers:
            if self.cancelled or time.monotonic() - waited > self.config.connect_wait_s:
                why = f"{self.runner.worker_count} of {plan.workers} worker(s) connected"
                return self.end("cancelled" if self.cancelled else "failed", why, 0.0)
            gevent.sleep(0.1)
        clients = [c.id for c in self.runner.clients.ready][: plan.workers]
        for number, (client, quota) in enumerate(
            zip(clients, quotas(plan.requests, len(clients)), strict=True)
        ):
            self.runner.send_message(
                "chimera_plan", {"plan": plan.to_dict(), "quota": quota, "number": number}, client_id=client
            )
        t0 = time.monotonic()
        spawn_rate = plan.spawn_rate if plan.spawn_rate else float(plan.locust_users())
        self.runner.start(plan.locust_users(), spawn_rate=spawn_rate)
        hard_end = None
        while len(self.done) < len(clients):
            gevent.sleep(TICK_S)
            now = time.monotonic()
            elapsed = now - t0
            if plan.duration_s is not None and elapsed >= plan.duration_s:
                self.stop_workers(plan.grace_s)
            if self.runner.worker_count < len(clients):  # Locust gave a worker up: end the run
                self.stop_workers(plan.grace_s)
            if self.stop_sent and hard_end is None:
                hard_end = now + plan.grace_s + SETTLE_EXTRA_S
            if hard_end is not None and now > hard_end:
                break
            lost = max(0, len(clients) - self.runner.worker_count)
            if lost and len(self.done) + lost >= len(clients):  # the others are done: no one to wait for
                break
            self.save()
            emit(self.tally.snapshot(now, elapsed, self.runner.user_count))
        gevent.sleep(0.2)  # the last batches travel with the done messages
        elapsed = time.monotonic() - t0
        missing = len(clients) - len(self.done)
        error = f"{missing} worker(s) did not report their end" if missing else None
        status = "cancelled" if self.cancelled else ("failed" if missing else "complete")
        return self.end(status, error, elapsed)

    def end(self, status: Any, error: str | None, elapsed: float) -> int:
        self.save()
        totals = self.tally.totals(elapsed)
        started = totals["requests_started"]
        unaccounted = max(0, started - self.tally.finished)
        load = self.writer.manifest.load or LoadRecord()
        self.writer.manifest.load = replace(
            load,
            requests_started=started,
            requests_ok=totals["requests_ok"],
            requests_failed=totals["requests_failed"],
            requests_incomplete=totals["requests_incomplete"],
            requests_unaccounted=unaccounted,
            elapsed_s=totals["duration_s"],
            requests_per_s=totals["requests_per_s"],
            tokens_per_s=totals["tokens_per_s"],
            ttft_p50_ms=totals["ttft_p50_ms"],
            ttft_p95_ms=totals["ttft_p95_ms"],
            errors=totals["errors"],
        )
        if unaccounted and error is None:
            error = f"{unaccounted} request(s) started but never reported"
        session = self.writer.finish(status, error)
        emit(
            {
                "type": "finished",
                "session": str(session.path),
                "status": status,
                "error": error,
                "load": drop_none(self.writer.manifest.load.to_toml_dict()),
            }
        )
        self.runner.quit()
        return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    config = MasterConfig.from_dict(json.loads(read_text(Path(args[0]), 64 * 1024 * 1024)))
    if config.snapshot_socket:
        follow(config.snapshot_socket)
    try:
        master = Master(config)
    except Exception as exc:  # the port taken, the sessions folder unwritable: one line, no traceback
        print(f"chimera-tui load: the master cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    gevent.signal_handler(signal.SIGTERM, master.cancel)
    gevent.signal_handler(signal.SIGINT, master.cancel)
    return master.run()


if __name__ == "__main__":
    raise SystemExit(main())
