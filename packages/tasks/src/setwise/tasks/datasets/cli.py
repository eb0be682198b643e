"""``setwise data``: list the datasets, print their statistics, prepare caches.

::

    setwise data                              # every dataset, where it is looked for, status
    setwise data stats qm9                    # statistics of one dataset
    setwise data prepare ogbg-molhiv          # build caches (OGB raw/, QM9 graphs, ...)
    setwise data histograms --out docs/datasets   # synthetic-molecules size/degree PNGs
    setwise data render-clevr OUT --train 1000 --val 200   # synthetic CLEVR-like folder

Wired into the ``setwise`` command by :mod:`setwise.tasks.cli` through :func:`register` and
:func:`run`; ``python -m setwise.tasks.datasets.cli data ...`` works on its own too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from setwise.tasks.datasets import files
from setwise.tasks.datasets.errors import DataError
from setwise.tasks.datasets.registry import DATASETS, availability, get, load


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--data-dir", type=Path, default=default,
                        help=f"data directory (default ${files.DATA_ENV}, else ../shared/data "
                             f"beside the checkout, else {files.DEFAULT_DATA_DIR})")
    parser.add_argument("--cache-dir", type=Path, default=default,
                        help=f"cache directory (default ${files.CACHE_ENV} or "
                             f"{files.DEFAULT_CACHE_DIR})")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``data`` subcommand to an ``argparse`` subparsers object."""
    parser = subparsers.add_parser(
        "data", help="list the datasets and their statistics",
        description="Datasets of both papers: where each is looked for, whether it is "
                    "present (MD5-verified where a reference checksum is known), statistics.")
    _common(parser, suppress=False)
    parser.add_argument("--no-verify", action="store_true", help="skip checksum verification")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    listing = sub.add_parser("list", help="the datasets and their files (the default)")
    _common(listing, suppress=True)
    for action, text in (("stats", "print a dataset's statistics"),
                         ("prepare", "build a dataset's caches (with progress bars)")):
        p = sub.add_parser(action, help=text)
        p.add_argument("name", choices=list(DATASETS), metavar="NAME",
                       help=", ".join(DATASETS))
        p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
        if action == "prepare":
            p.add_argument("--download", action="store_true",
                           help="fetch missing files from the dataset's official source")
        _common(p, suppress=True)
    hist = sub.add_parser("histograms", help="save synthetic-molecules size/degree histograms")
    hist.add_argument("--out", type=Path, default=Path("docs/datasets"))
    hist.add_argument("--seed", type=int, default=0)
    _common(hist, suppress=True)
    render = sub.add_parser("render-clevr", help="write a synthetic CLEVR-like folder")
    render.add_argument("out", type=Path, help="folder that will hold CLEVR_v1.0/")
    render.add_argument("--train", type=int, default=1000)
    render.add_argument("--val", type=int, default=200)
    render.add_argument("--seed", type=int, default=0)
    return parser


def where_hint(data_dir=None) -> str:
    """Where the data directory was taken from, and how to point it elsewhere."""
    origin = files.data_dir_origin(data_dir)
    source = {"argument": "--data-dir",
              "default": f"the default, as ${files.DATA_ENV} is not set",
              "beside the checkout": f"beside the checkout, as ${files.DATA_ENV} is not set",
              }.get(origin, origin)
    return (f"looked in {files.data_dir(data_dir)} ({source}); point elsewhere with "
            f"--data-dir DIR or {files.DATA_ENV}=DIR")


def _list(args) -> int:
    data_dir = files.data_dir(args.data_dir)
    print(f"data dir:  {data_dir}  (from {files.data_dir_origin(args.data_dir)}; set "
          f"--data-dir DIR or ${files.DATA_ENV} to change it)")
    print(f"cache dir: {files.cache_dir(args.cache_dir)}")
    if not data_dir.is_dir():
        print(f"  {data_dir} does not exist")
    states = []
    for name, info in DATASETS.items():
        overall, rows = availability(info, args.data_dir, verify=not args.no_verify)
        states.append(overall)
        print(f"\n{name:20s} {overall:9s} {info.paper}")
        print(f"  {info.summary}")
        if not rows:
            print("  generated here; nothing to download")
        for status, path, what in rows:
            print(f"  {status:19s} {path}  ({what})")
    if any(state in ("missing", "partial") for state in states):
        print(f"\nSome datasets are missing: {where_hint(args.data_dir)}, or fetch one with "
              "'setwise data prepare NAME --download'.")
    if "CORRUPT" in states:
        print("\nSome files are corrupt (counts or checksums differ from the official "
              "release): replace them, or fetch them again with 'setwise data prepare NAME "
              "--download' after removing them.")
    return 0


def _stats(args) -> int:
    info = get(args.name)
    rows = info.stats(data_dir=args.data_dir, cache_dir=args.cache_dir, seed=args.seed)
    width = max(len(label) for label, _ in rows)
    print(f"{info.name}: {info.summary}")
    for label, value in rows:
        print(f"  {label:{width}s}  {value}")
    return 0


def _prepare(args) -> int:
    info = get(args.name)
    extra = {"download": True} if args.download and not info.generated else {}
    for split in info.splits:
        data = load(args.name, split, args.data_dir, args.seed, args.cache_dir, **extra)
        print(f"{args.name} {split}: {len(data):,} items")
    return 0


def _histograms(args) -> int:
    from setwise.tasks.datasets.synthetic import save_histograms

    for path in save_histograms(args.out, args.seed, args.cache_dir):
        print(path)
    return 0


def _render(args) -> int:
    from setwise.tasks.datasets.clevr_render import write_clevr

    print(write_clevr(args.out, args.train, args.val, args.seed))
    return 0


def run(args) -> int:
    """Run a parsed ``setwise data ...`` command; returns the exit status."""
    for key in ("data_dir", "cache_dir"):
        if not hasattr(args, key):
            setattr(args, key, None)
    actions = {None: _list, "list": _list, "stats": _stats, "prepare": _prepare,
               "histograms": _histograms, "render-clevr": _render}
    try:
        return actions[getattr(args, "data_command", None)](args)
    except DataError as error:
        print(f"setwise data: error: {error}", file=sys.stderr)
        if isinstance(error, FileNotFoundError):
            print(f"setwise data: {where_hint(args.data_dir)}", file=sys.stderr)
        return 1


def main(argv=None) -> int:
    """Stand-alone entry: ``python -m setwise.tasks.datasets.cli data ...``."""
    parser = argparse.ArgumentParser(prog="setwise")
    register(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
