"""How a node handles files: one frozen value the node's config carries (`NodeConfig.files`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import platformdirs

from p2pmsg.node.transfers.receiver import (
    DEFAULT_MAX_SIZE,
    DEFAULT_MIN_FREE_AFTER,
    ReceivePolicy,
)
from p2pmsg.node.transfers.sender import DEFAULT_WINDOW

#: How long an offer waits for an answer before both sides call it expired.
DEFAULT_OFFER_TIMEOUT = 15 * 60.0


@dataclass(frozen=True)
class TransferSettings:
    #: where received files land; None: nowhere yet, so offers can only wait or be declined
    downloads: Path | None = None
    #: accept every offer the limits allow, without asking (`listen --accept-files`)
    accept_files: bool = False
    max_file_size: int = DEFAULT_MAX_SIZE
    #: free space that must remain after a file is written
    min_free_after: int = DEFAULT_MIN_FREE_AFTER
    #: e.g. frozenset({"txt", "pdf"}); None accepts any extension
    allowed_extensions: frozenset[str] | None = None
    #: chunks in flight per outgoing transfer (flow-control window)
    window: int = DEFAULT_WINDOW
    offer_timeout: float = DEFAULT_OFFER_TIMEOUT
    #: take the downloads folder and the limits from the profile's saved settings
    #: (`profile_policy`), live as they change: the terminal app, whose Settings
    #: screen edits them. Headless commands name them on the command line instead.
    from_profile: bool = False

    def policy(self) -> ReceivePolicy | None:
        if self.downloads is None:
            return None
        return ReceivePolicy(
            self.downloads, self.max_file_size, self.min_free_after, self.allowed_extensions
        )


def default_downloads() -> Path:
    """The user's usual downloads folder (XDG's, else ~/Downloads); made on first use."""
    return Path(platformdirs.user_downloads_dir())


def profile_policy(
    downloads_dir: str | None, max_file_size: int, accepted_extensions: tuple[str, ...] | None
) -> ReceivePolicy:
    """The receive policy the profile's saved settings describe (`from_profile`)."""
    folder = Path(downloads_dir).expanduser() if downloads_dir else default_downloads()
    return ReceivePolicy(
        folder,
        max_file_size,
        DEFAULT_MIN_FREE_AFTER,
        frozenset(accepted_extensions) if accepted_extensions else None,
    )
