"""The walk a mission takes after the API accepted it: intake, store, work queue, running,
progress, delivery of callbacks; ``wiring`` puts the parts together."""
