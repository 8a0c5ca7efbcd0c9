"""RQ jobs for runs. Thin: they call the harness and services."""

from __future__ import annotations

from django.db import close_old_connections


def run_job(run_id: int) -> str:
    from agentops.harness.loop import drive_run

    close_old_connections()
    try:
        return drive_run(run_id)
    finally:
        close_old_connections()


def reconcile_job() -> dict[str, int]:
    from runs.services import reconcile_runs

    result = reconcile_runs()
    from runs.escalation_jobs import escalations_sweep_job

    result.update({f"escalations_{k}": v for k, v in escalations_sweep_job().items()})
    from budgets.jobs import budgets_tick

    tick = budgets_tick()
    result.update({f"reservations_{k}": v for k, v in tick["reservations"].items()})
    result.update({"projection_alerts": tick["projection_alerts"], "drift_alerts": tick["drift_alerts"]})
    return result
