"""PrintFabric cloud: the multi-tenant control plane and virtual spooler."""
