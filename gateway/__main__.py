"""Entry point of `printfabric-gateway`; the IPPS gateway and MFP API (issue #4, #5) is not built yet."""

import sys


def main() -> int:
    print(
        "printfabric-gateway: the IPPS gateway and MFP API (issue #4, #5) is not built yet in this version",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
