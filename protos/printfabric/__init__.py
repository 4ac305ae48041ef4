"""PrintFabric wire contracts and protocol codecs (import root: protos/)."""
