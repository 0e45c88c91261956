"""The mission API: missions, their events, operations (health, images, runtimes), metrics and
the OpenAPI document."""
