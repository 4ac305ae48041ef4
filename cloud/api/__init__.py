"""The cloud's gRPC transport: thin servicers around the domain, one auth interceptor."""
