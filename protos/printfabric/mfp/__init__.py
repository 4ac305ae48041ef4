"""The MFP API: one JSON-over-HTTPS shape, served by the gateway (MFPs that talk to the cloud)
and by the node (MFPs on its site). `build_mfp_app(backend)` makes the FastAPI app; a backend
(`MfpBackend`) answers the calls, `CloudMfpBackend` by gRPC calls to the cloud."""

from printfabric.mfp.api import build_mfp_app
from printfabric.mfp.backend import DeviceContext, MfpBackend, UserContext
from printfabric.mfp.errors import MfpError
from printfabric.mfp.tokens import UserTokenSigner

__all__ = [
    "DeviceContext",
    "MfpBackend",
    "MfpError",
    "UserContext",
    "UserTokenSigner",
    "build_mfp_app",
]
