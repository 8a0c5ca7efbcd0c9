"""Floor 5, the project wiring (settings, URLs, middleware, worker, scheduler, demo and bench
registries), and, in its subpackages, floor 3: the harness core (``harness``, ``llm``, ``tools``,
``toolbox``). The layers are written down and checked in ``.importlinter``.
"""
