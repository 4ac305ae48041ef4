"""Logs in to a PrintFabric cloud and submits a print job with the generated gRPC stubs."""

import argparse
import json
import pathlib

import grpc
from printfabric.v1 import auth_pb2, auth_pb2_grpc, spool_pb2, spool_pb2_grpc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--demo", required=True, help="the demo.json that `make run` writes")
    ap.add_argument("file", type=pathlib.Path)
    args = ap.parse_args()
    demo = json.loads(pathlib.Path(args.demo).read_text())
    tls = grpc.ssl_channel_credentials(pathlib.Path(demo["ca_cert"]).read_bytes())
    with grpc.secure_channel(demo["cloud_target"], tls) as channel:
        login = auth_pb2_grpc.AuthServiceStub(channel).AuthenticateUser(
            auth_pb2.AuthenticateUserRequest(
                company_code=demo["company_code"],
                credential=auth_pb2.UserCredential(
                    password=auth_pb2.PasswordCredential(
                        login=demo["login"], password=demo["password"]
                    )
                ),
            )
        )
        bearer = [("authorization", f"Bearer {login.tokens.access_token}")]

        def messages():  # a header, then the document in 1 MiB chunks: never whole in memory
            yield spool_pb2.SubmitJobRequest(
                header=spool_pb2.JobHeader(printer=demo["queue"], title=args.file.name)
            )
            with args.file.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    yield spool_pb2.SubmitJobRequest(chunk=chunk)

        job = spool_pb2_grpc.SpoolServiceStub(channel).SubmitJob(messages(), metadata=bearer).job
        print(
            f"job {job.number} {spool_pb2.JobState.Name(job.state)}: {job.page_count} pages, "
            f"{job.size_bytes} bytes, sha256 {job.sha256[:12]}…\n{job.state_message}"
        )


if __name__ == "__main__":
    main()
