"""The shipped datasets: where `train` and `evaluate` find them, in any install.

A checkout has them in `datasets/`. A wheel does not carry them (18 MB that
`p2pmsg simulate` reproduces byte for byte in about a second), so an
installed copy makes each one on first use in the user's cache directory,
with the exact parameters of `datasets/README.md`, and checks it against the
SHA-256 pinned here before every use: a corrupt or altered cache file is
made again, with a message. A file is written under a temporary name and
renamed into place, so a reader never sees half of one.

The checkout's own files are used as they are: they are the source the
pins come from (tests/monitor/test_datasets.py holds the two together).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from p2pmsg.errors import DatasetError
from p2pmsg.monitor.paths import checkout_root, user_cache_dir
from p2pmsg.monitor.simulate import SimConfig


@dataclass(frozen=True)
class ShippedDataset:
    """One file of `datasets/`: its name, what it is for, how it is made, its pinned hash."""

    name: str
    purpose: str  # "training" or "test", for messages
    config: SimConfig
    sha256: str

    @property
    def recipe(self) -> str:
        """The `p2pmsg simulate` options that make it (the rest keep their defaults)."""
        return f"p2pmsg simulate --hours {self.config.hours:g} --seed {self.config.seed}"

    def hint(self) -> str:
        """What to tell a user whose copy of this dataset cannot be found or made."""
        return (
            f"pass --data FILE (a labeled JSON-lines log; `{self.recipe} -o FILE` "
            f"makes the shipped {self.purpose} set)"
        )


TRAINING = ShippedDataset(
    "synthetic_logs.jsonl",
    "training",
    SimConfig(hours=240, seed=1),
    "fbd5218359b687d1e51d69e3db961e3149dc3374b4f7b1b2cc882c74287929e1",
)
TEST = ShippedDataset(
    "test_logs.jsonl",
    "test",
    SimConfig(hours=120, seed=2),
    "65157828b6223edccbf7fe57faa43ba10fca50d399cc68c1105c420abf00b94e",
)
SHIPPED = (TRAINING, TEST)

Say = Callable[[str], None]


def checkout_path(dataset: ShippedDataset) -> Path | None:
    """`datasets/NAME` of the checkout this package runs from, if it runs from one."""
    root = checkout_root()
    return root / "datasets" / dataset.name if root is not None else None


def cache_path(dataset: ShippedDataset, cache_dir: Path | None = None) -> Path:
    return (cache_dir if cache_dir is not None else user_cache_dir()) / "datasets" / dataset.name


def locate(
    dataset: ShippedDataset, *, cache_dir: Path | None = None, say: Say | None = None
) -> Path:
    """The file to read: the checkout's, else a verified copy in the cache, made if needed.

    Raises `DatasetError`, saying what to pass instead, when no good copy can be made.
    """
    shipped = checkout_path(dataset)
    if shipped is not None and shipped.is_file():
        return shipped
    say = say or (lambda _msg: None)
    path = cache_path(dataset, cache_dir)
    try:
        cached: bytes | None = path.read_bytes()
    except FileNotFoundError:
        cached = None
    except OSError as exc:
        say(f"cannot read {path} ({exc.strerror or exc}); making it again")
        cached = b""
    if cached is not None and hashlib.sha256(cached).hexdigest() == dataset.sha256:
        return path
    if cached:
        say(
            f"{path} does not match the {dataset.purpose} set's pinned SHA-256 "
            "(corrupt or altered); making it again"
        )
    say(f"making the {dataset.purpose} set in {path} (`{dataset.recipe}`, about a second)")
    write(dataset, path)
    return path


def render(dataset: ShippedDataset) -> bytes:
    """The dataset's bytes, exactly as `p2pmsg simulate ... -o FILE` writes them."""
    from p2pmsg.monitor.simulate import generate, write_jsonl

    out = io.StringIO(newline="\n")
    write_jsonl(generate(dataset.config), out)
    return out.getvalue().encode("utf-8")


def write(dataset: ShippedDataset, path: Path) -> None:
    """Make the dataset, check its pinned hash, then put it at `path` atomically."""
    content = render(dataset)
    digest = hashlib.sha256(content).hexdigest()
    if digest != dataset.sha256:
        raise DatasetError(
            f"this p2pmsg does not reproduce the shipped {dataset.purpose} set "
            f"(SHA-256 {digest}, pinned {dataset.sha256}); {dataset.hint()}"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise DatasetError(f"cannot write {path}: {reason}; {dataset.hint()}") from None
