"""PrintFabric node: the on-premise node (issue #3)."""
