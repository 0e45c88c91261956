"""Front doors: other protocols on the same engine, one package per door (``webgme``,
``zerocloud``), plus what doors share (``archives``: reading uploaded zip and tar files).

Each door turns its requests into missions and runs them on the same pipeline as the mission
API; none has an execution path of its own. Doors never import each other.
"""
