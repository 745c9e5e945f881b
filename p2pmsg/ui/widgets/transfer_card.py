"""A file transfer as a card in the conversation: name, size, progress or result.

Rows of `rich.text.Text` for `MessageLog` to wrap and paint. Names, paths and
errors come from peers or the filesystem and are shown literally. An incoming
offer carries clickable "Accept"/"Decline" spans (click meta naming the
log's `transfer` action), only for a well-formed id: the id ends up in that
action string, so anything but hex is refused rather than quoted.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rich.style import Style
from rich.text import Text

from p2pmsg.node.api import TransferView
from p2pmsg.ui.safe_text import literal
from p2pmsg.ui.timefmt import format_bytes

_HEX_ID = re.compile(r"[0-9a-f]{1,64}")


def card_rows(transfer: TransferView, width: int, style: Callable[[str], Style]) -> list[Text]:
    """The card's rows; `style` maps the log's component classes to styles."""
    card = style("message-log--card")
    arrow = "⇣ incoming" if transfer.direction == "in" else "⇡ outgoing"
    folder = transfer.files > 0  # a folder or multi-file offer: one card for all its files
    top = Text(f"┌ {arrow} {'folder' if folder else 'file'}  ", style=card)
    top.append_text(literal(transfer.name, style=card + Style(bold=True)))
    count = f"{transfer.files} files · " if folder else ""
    top.append(f"  {count}{format_bytes(transfer.size)}", style=card)
    rows = [top]
    if transfer.state in ("transferring", "paused", "verifying"):
        fraction = transfer.bytes_done / transfer.size if transfer.size else 1.0
        bar_width = max(min(width - 24, 30), 6)
        filled = round(fraction * bar_width)
        bar = Text("│ ", style=card)
        bar.append("█" * filled, style=style("message-log--bar"))
        bar.append("░" * (bar_width - filled), style=style("message-log--bar-empty"))
        bar.append(f" {fraction:4.0%}", style=card)
        if folder:
            bar.append(f" {transfer.files_done}/{transfer.files} files", style=card)
        if transfer.state == "transferring":
            bar.append(f" {format_bytes(transfer.rate_bps)}/s", style=card)
        else:
            bar.append(f" {transfer.state}", style=card)
        rows.append(bar)
    elif transfer.state == "offered" and transfer.direction == "in":
        line = Text("│ ", style=card)
        if _HEX_ID.fullmatch(transfer.id):
            button = style("message-log--button")
            line.append(
                " Accept (a) ",
                style=button + Style.from_meta({"@click": f"transfer('{transfer.id}', True)"}),
            )
            line.append("  ")
            line.append(
                " Decline (x) ",
                style=button + Style.from_meta({"@click": f"transfer('{transfer.id}', False)"}),
            )
            # a/x act in the conversation log; from the composer it takes the commands.
            line.append("  or /accept /decline", style=style("message-log--status"))
        else:
            line.append("offer with a malformed id: ignored", style=style("message-log--error"))
        rows.append(line)
    else:
        rows.append(_result(transfer, card, style))
    # The digest is known once the whole file was read (sender) or verified (receiver):
    # protocol version 2 sends it at the end of the transfer, not in the offer.
    if folder:
        rows.append(Text("└ sha256 of each file, checked as it arrives", style=card))
        return rows
    digest = transfer.sha256[:16] if transfer.sha256 else "at the end of the transfer"
    rows.append(Text("└ sha256 " + digest, style=card))
    return rows


def _result(transfer: TransferView, card: Style, style: Callable[[str], Style]) -> Text:
    line = Text("│ ", style=card)
    state = transfer.state
    if state == "completed" and transfer.direction == "out":
        # The receiver checked the SHA-256; the path is where it was sent *from*.
        line.append("✓ sent and verified by the receiver", style=style("message-log--read"))
        if transfer.path:
            line.append(" · from ", style=card)
            line.append_text(literal(transfer.path, style=card))
    elif state == "completed":
        line.append("✓ received and verified", style=style("message-log--read"))
        if transfer.path:
            line.append(" · saved in " if transfer.files else " · saved as ", style=card)
            line.append_text(literal(transfer.path, style=card))
    elif state in ("failed", "cancelled", "expired", "declined"):
        line.append(f"✗ {state}", style=style("message-log--failed"))
        if transfer.files_done:
            line.append(f" ({transfer.files_done}/{transfer.files} files arrived)", style=card)
        if transfer.error:
            line.append(": ", style=card)
            line.append_text(literal(transfer.error, style=card))
    elif state == "offered":
        line.append("waiting for the peer to accept…", style=card)
    else:
        line.append(state, style=card)
    return line
