"""Entry point of `printfabric-node`; the on-premise node (issue #3) is not built yet."""

import sys


def main() -> int:
    print(
        "printfabric-node: the on-premise node (issue #3) is not built yet in this version",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
