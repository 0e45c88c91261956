"""The ``judge`` command: a client of a judge server over HTTP, standard library only."""
