"""Front doors: the executor API (seed 001) and the exec API (seed 002).

Each turns its request into a mission and runs it on the same ``MissionWorkers`` as the mission
API; neither has an execution path of its own.
"""
