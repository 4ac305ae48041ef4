"""Releases the demo user's held jobs to a printer, as a user does at an MFP."""

import argparse
import json
import pathlib

import grpc
from printfabric.v1 import auth_pb2, auth_pb2_grpc, spool_pb2, spool_pb2_grpc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--demo", required=True, help="the demo.json that `make run` writes")
    ap.add_argument("--printer", default="office", help="queue to release to")
    args = ap.parse_args()
    demo = json.loads(pathlib.Path(args.demo).read_text())
    tls = grpc.ssl_channel_credentials(pathlib.Path(demo["ca_cert"]).read_bytes())
    with grpc.secure_channel(demo["cloud_target"], tls) as channel:
        login = auth_pb2_grpc.AuthServiceStub(channel).AuthenticateUser(
            auth_pb2.AuthenticateUserRequest(
                company_code=demo["company_code"],
                credential=auth_pb2.UserCredential(pin=demo["pin"]),
            )
        )
        bearer = [("authorization", f"Bearer {login.tokens.access_token}")]
        spool = spool_pb2_grpc.SpoolServiceStub(channel)
        released = spool.ReleaseJobs(
            spool_pb2.ReleaseJobsRequest(all_held=True, printer_id=args.printer), metadata=bearer
        )
        for job in released.jobs:
            print(f"job {job.number} {job.title!r}: {job.state_message}")
        if not released.jobs:
            print("no held jobs")


if __name__ == "__main__":
    main()
