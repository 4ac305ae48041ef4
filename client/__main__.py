"""Entry point of `printfabric`. The workstation client (issue #7) is not built yet; the MFP
simulator is `printfabric mfp` (see client/mfp.py)."""

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["mfp"]:
        from client import mfp

        return mfp.main(args[1:])
    print(
        "printfabric: the workstation client (issue #7) is not built yet in this version; "
        "`printfabric mfp --help` is the MFP simulator",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
