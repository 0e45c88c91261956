"""Running a mission: the runner walks its stages in sandboxes, fetching its files within a byte
budget."""
