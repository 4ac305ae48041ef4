"""Generated gRPC stubs of the v1 contract: `from printfabric.v1 import spool_pb2, spool_pb2_grpc`.

The *_pb2* modules beside this file are produced by `make proto` and never edited by hand.
"""
