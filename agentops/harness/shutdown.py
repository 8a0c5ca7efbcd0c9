"""A flag the work-horse process sets when its worker is asked to shut down (deploy, SIGTERM).

The loop checks it between steps: the step in flight finishes and is persisted, then the run is
handed back to the queue for another worker. See agentops.worker.AgentWorker.
"""

from __future__ import annotations

import signal
from types import FrameType

requested = False


def _handler(signum: int, frame: FrameType | None) -> None:
    global requested
    requested = True


def install() -> None:
    signal.signal(signal.SIGUSR1, _handler)
