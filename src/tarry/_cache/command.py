"""``tarry cache ls | du | clear [PATH]``: what a cache holds, and emptying it.

* ``ls``: one line per entry, newest first: function, size, when it was
  written, when it was last used, the start of its key;
* ``du``: the total, and per function;
* ``clear``: every entry (the store stays, empty and usable; this is also
  how a store of an older format is made usable again), or with
  ``--older-than 7d`` those unused that long, or with ``--max-size 10GB``
  the least recently used down to that size.

PATH defaults to the ``TARRY_CACHE`` environment variable. ``ls`` and
``du`` read the entries' headers only, never their results.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from typing import Any, Final

from tarry._cache.files import Files, Local, Remote
from tarry._cache.formats import FORMAT
from tarry._cache.store import CacheFormatError, Store, check_location, format_error, older
from tarry._cache.tidy import clear, entries, human, parse_duration, parse_size
from tarry._extras import MissingExtraError

__all__ = ["ENVIRONMENT", "add_parser", "run"]

#: the environment variable that names the store when the command is given no PATH
ENVIRONMENT: Final = "TARRY_CACHE"
#: exit status when the location is unusable, and when none was given (as argparse's)
FAILED: Final = 1
USAGE: Final = 2
#: how many hex digits of a key ``ls`` shows
_KEY_SHOWN: Final = 16


def add_parser(commands: Any) -> None:
    """Add ``cache`` and its three subcommands to the ``tarry`` command's subparsers."""
    cache = commands.add_parser(
        "cache",
        help="list, measure or clear a cache of results kept across runs (tarry.cache)",
        description="List, measure or clear the store of a tarry.cache(). PATH is the "
        f"directory or fsspec URL given to tarry.cache(); default: ${ENVIRONMENT}.",
    )
    actions = cache.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (
        ("ls", "one line per entry, newest first: function, size, written, last used, key"),
        ("du", "the total size, and per function"),
        ("clear", "remove every entry, or those --older-than a duration, or down to --max-size"),
    ):
        action = actions.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        action.add_argument(
            "path", nargs="?", default=None, metavar="PATH",
            help=f"the cache's directory or URL (default: ${ENVIRONMENT})",
        )  # fmt: skip
    clearing = actions.choices["clear"]
    clearing.add_argument(
        "--older-than", type=_duration, default=None, metavar="DURATION",
        help="only the entries not used for this long: 7d, 12h, 30m, 90s, 2w",
    )  # fmt: skip
    clearing.add_argument(
        "--max-size", type=_size, default=None, metavar="SIZE",
        help="evict the least recently used entries until the cache holds at most SIZE "
        "(such as 10GB, 500 MB, 2GiB)",
    )  # fmt: skip


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _size(text: str) -> int:
    try:
        size = parse_size(text, "--max-size")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    assert size is not None  # a string is never None
    return size


def run(args: argparse.Namespace) -> int:
    """Do what ``tarry cache ACTION`` asks; returns the exit status.

    0 when done, 1 when the location is no cache this tarry can use (or
    cannot be read), 2 when no location was given.
    """
    location = args.path or os.environ.get(ENVIRONMENT)
    if not location:
        print(f"tarry cache {args.action}: which cache? Give its directory or URL "
              f"(tarry cache {args.action} ~/.cache/myproject) or set ${ENVIRONMENT}",
              file=sys.stderr)  # fmt: skip
        return USAGE
    try:
        return _run(args.action, location, args.__dict__)
    except (CacheFormatError, OSError, MissingExtraError) as exc:
        print(f"tarry cache {args.action}: {exc}", file=sys.stderr)
        return FAILED


def _run(action: str, location: str, options: dict[str, Any]) -> int:
    if action == "clear":
        return _clear(location, options["older_than"], options["max_size"])
    store = Store(check_location(location) or "", create=False)
    if not store.present:
        print(f"{store.location}: no cache there (nothing stored yet)")
        return 0
    found = entries(store.files)
    if action == "ls":
        print(f"{'function':<24}  {'size':>9}  {'written':<16}  {'last used':<16}  key")
        for e in found:
            print(f"{e.label[:24]:<24}  {human(e.size):>9}  {_when(e.created)}  {_when(e.used)}  "
                  f"{e.key[:_KEY_SHOWN]}")  # fmt: skip
    else:
        sizes: dict[str, list[int]] = defaultdict(list)
        for e in found:
            sizes[e.label].append(e.size)
        for label, each in sorted(sizes.items(), key=lambda item: -sum(item[1])):
            print(f"{human(sum(each)):>9}  {_entries(len(each)):>13}  {label}")
    total = sum(e.size for e in found)
    print(f"{human(total):>9}  {_entries(len(found)):>13}  in all, at {store.location}")
    return 0


def _clear(location: str, older_than: float | None, max_size: int | None) -> int:
    if "://" in location:
        check_location(location)  # fsspec installed, else the pip command
    files: Files = Remote(location) if "://" in location else Local(_local(location))
    found = files.read("FORMAT")
    if found is None:
        if not files.is_empty():
            raise CacheFormatError(f"{files.root} holds no tarry cache (no FORMAT file): "
                                   "left as it is")  # fmt: skip
        print(f"{files.root}: no cache there, nothing to clear")
        return 0
    text = found.decode(errors="replace").strip()
    if text != FORMAT and not older(text):
        raise CacheFormatError(format_error(files.root, text))  # a newer tarry's, or not ours
    if text != FORMAT and (older_than is not None or max_size is not None):
        raise CacheFormatError(
            f"the cache at {files.root} has the older format {text!r}, whose entries this "
            f"tarry cannot read: clear it whole, with tarry cache clear {location}"
        )
    done = clear(files, older_than, max_size)
    print(f"removed {_entries(done.removed)} ({human(done.removed_bytes)}); {done.left} left "
          f"({human(done.left_bytes)}) at {files.root}")  # fmt: skip
    return 0


def _local(location: str) -> str:
    return os.path.abspath(os.path.expanduser(location))


def _entries(count: int) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))
