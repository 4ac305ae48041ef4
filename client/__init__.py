"""PrintFabric client: the workstation client (issue #7)."""
