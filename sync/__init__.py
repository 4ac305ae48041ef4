"""PrintFabric sync: the Local Active Directory Sync tool (issue #8)."""
