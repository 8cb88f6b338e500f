"""How a run runs on this machine, whatever the method: thread and warning defaults
(environment), one run per project (runlock), a Prefect server that dies with its run
(prefect_server), stages placed on work pools (placement), calls side by side (parallel), signals
(interrupts), progress and the terminal, and stages reused across pipelines (reuse)."""
