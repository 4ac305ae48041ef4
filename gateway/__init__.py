"""PrintFabric gateway: the IPPS gateway and MFP API (issue #4, #5)."""
