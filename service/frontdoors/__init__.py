"""Front doors: the executor API and the exec API.

Each turns its request into a mission and runs it on the same ``MissionWorkers`` as the mission
API; neither has an execution path of its own.
"""
