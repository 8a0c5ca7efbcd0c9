"""The RQ worker class for AgentOps: ``manage.py rqworker runs default --worker-class agentops.worker.AgentWorker``.

RQ's warm shutdown (first SIGTERM) waits for the current job; an agent run can take many
minutes, longer than any deploy grace period. This worker tells the job (SIGUSR1 to the work
horse) to hand its run back after the current step, so a deploy loses nothing and waits seconds.
"""

from __future__ import annotations

import os
import signal

from rq.worker import Worker

# Imported once in the worker, before it forks a work horse per job: otherwise every job pays
# ~0.85 s to import the anthropic SDK again, which an operator feels as approval latency.
import agentops.harness.loop  # noqa: F401, E402
import agentops.llm.gateway  # noqa: F401, E402
from agentops import telemetry
from agentops.harness import shutdown


class AgentWorker(Worker):
    def setup_work_horse_signals(self) -> None:
        super().setup_work_horse_signals()
        shutdown.install()

    def perform_job(self, job, queue):  # type: ignore[no-untyped-def]
        # The work horse ends with os._exit: spans and logs of this job go out now or never.
        try:
            return super().perform_job(job, queue)
        finally:
            telemetry.flush()

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()
        if self.horse_pid:
            try:
                os.kill(self.horse_pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass
