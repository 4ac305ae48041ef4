"""Transport security for PrintFabric: the development PKI and TLS contexts."""
