"""Domain logic of the cloud: plain Python, no gRPC, no HTTP, no generated modules."""
