"""Sandboxes: one container per sandbox, hardened, labelled and removed; the one Docker adapter
(``docker``), the engine's runtime (``engine``), the warm pool, files over the supervisor's
channel, tar handling and the seccomp profile."""
