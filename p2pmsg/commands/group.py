"""`p2pmsg group create|add|remove|leave|rename|list|receipts`: groups from the command line.

Each subcommand starts a node (dialling only the group's members), makes the signed
change (docs/PROTOCOL.md, "Groups"), stores it, and hands it to the members it
reaches within `--wait` seconds. Members it does not reach get it from any member
they meet later, or from this profile's next node (`listen`, the app): nothing is
lost by a member being away. Exit status 0 when the change is made and stored,
1 on error (unknown peer or group, not allowed: only admins remove and rename, ...).
`p2pmsg send --group NAME TEXT` posts to a group. `receipts` lists, for this profile's
last post (or `--message ID`), which member holds it and which has read it, as the
members' summaries told this profile (kept in its store; `--wait` lets the members
met within it tell more).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from p2pmsg.commands._node import add_network_options, find_peer, json_line, running_node
from p2pmsg.errors import ConfigError
from p2pmsg.node.api import GroupMessageView, GroupReceiptView, GroupView
from p2pmsg.node.node import Node
from p2pmsg.sanitize import printable


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "group",
        parents=[common],
        help="create, change, leave or list group conversations",
        description="Group conversations: signed membership changes every member checks.",
    )
    sub = p.add_subparsers(dest="group_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", parents=[common], help="a new group with these peers")
    create.add_argument("name", help="the group's name")
    create.add_argument(
        "--members",
        required=True,
        metavar="PEER[,PEER...]",
        help="display names or fingerprint prefixes of peers met before",
    )
    add = sub.add_parser("add", parents=[common], help="add a peer to a group")
    add.add_argument("name", help="group name or id prefix")
    add.add_argument("peer", help="display name or fingerprint prefix")
    remove = sub.add_parser("remove", parents=[common], help="remove a member (admins only)")
    remove.add_argument("name", help="group name or id prefix")
    remove.add_argument("peer", help="member name or fingerprint prefix")
    leave = sub.add_parser("leave", parents=[common], help="leave a group")
    leave.add_argument("name", help="group name or id prefix")
    rename = sub.add_parser("rename", parents=[common], help="rename a group (admins only)")
    rename.add_argument("name", help="group name or id prefix")
    rename.add_argument("new_name", metavar="NEW", help="the group's new name")
    listing = sub.add_parser("list", parents=[common], help="the groups this profile is in")
    listing.add_argument("--json", action="store_true", help="one JSON object per group")
    receipts = sub.add_parser(
        "receipts", parents=[common], help="who holds, and who read, your last post in a group"
    )
    receipts.add_argument("name", help="group name or id prefix")
    receipts.add_argument("--message", metavar="ID", help="this post of yours, not the last")
    receipts.add_argument("--json", action="store_true", help="one JSON object per member")
    for action in (create, add, remove, leave, rename, listing, receipts):
        action.add_argument(
            "--wait",
            type=float,
            default=3.0,
            metavar="S",
            help="how long to look for members to hand the change to (default: %(default)s s)",
        )
        add_network_options(action)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.wait < 0:
        raise ConfigError("--wait must not be negative")
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    action = args.group_command
    async with running_node(
        args, f"p2pmsg group {action}", auto_connect=False, monitor_models=False
    ) as node:
        if action == "list":
            views = await node.groups()
            for view in views:
                print(json_line(_record(view)) if args.json else _line(view))
            if not views and not args.json:
                print("no groups")
            return 0
        if action == "receipts":
            if args.wait:
                await _hand_over(node, args.name, args.wait)
            post, rows = await node.group_receipts(args.name, args.message)
            _print_receipts(post, rows, args.json)
            return 0
        if action == "create":
            peers = [p.strip() for p in args.members.split(",") if p.strip()]
            if not peers:
                raise ConfigError("--members names no peer")
            members = [await find_peer(node, peer, args.wait) for peer in peers]
            view = await node.create_group(args.name, members)
        elif action == "add":
            view = await node.add_member(args.name, await find_peer(node, args.peer, args.wait))
        elif action == "remove":
            view = await node.remove_member(args.name, args.peer)
        elif action == "rename":
            view = await node.rename_group(args.name, args.new_name)
        else:
            view = await node.leave_group(args.name)
        live, total = await _hand_over(node, view.id, args.wait)
    print(_line(view))
    if total:
        print(
            f"handed to {live} of {total} members now; the others get it from any member "
            "they meet, or from this profile's next node"
        )
    return 0


async def _hand_over(node: Node, group: str, wait: float) -> tuple[int, int]:
    """Give the dialled members up to `wait` seconds to connect (each session that comes
    up exchanges summaries, which hands the change over, and brings their receipts)."""
    replica = node.groups_service.find(group)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    live, total = node.groups_service.reachable(replica)
    while live < total and loop.time() < deadline:
        await asyncio.sleep(0.1)
        live, total = node.groups_service.reachable(replica)
    await asyncio.sleep(0.2 if live else 0)  # let the summaries cross before the bye
    return live, total


def _print_receipts(
    post: GroupMessageView, rows: tuple[GroupReceiptView, ...], as_json: bool
) -> None:
    if as_json:
        for r in rows:
            record = {"message": post.id, "fingerprint": r.fingerprint, "name": r.name}
            print(json_line({**record, "delivered": r.delivered, "read": r.read}))
        return
    n = post.recipients
    seq = post.id.rpartition(":")[2]
    what = "(disappeared)" if post.text is None else f'"{printable(post.text[:40])}"'
    print(
        f"{printable(post.group_name)}: your post {seq} {what}: "
        f"delivered {post.delivered}/{n}, read {post.read}/{n}"
    )
    for r in rows:
        state = "read" if r.read else "delivered, not read" if r.delivered else "not delivered"
        print(f"  {printable(r.name)} ({r.fingerprint[:16]}): {state}")


def _record(view: GroupView) -> dict[str, Any]:
    return {
        "id": view.id,
        "name": view.name,
        "member": view.member,
        "admin": view.admin,
        "members": [
            {"fingerprint": m.fingerprint, "name": m.name, "admin": m.admin, "me": m.me}
            for m in view.members
        ],
    }


def _line(view: GroupView) -> str:
    names = ", ".join(printable(m.name) + (" (admin)" if m.admin else "") for m in view.members)
    state = "" if view.member else " [not a member any more]"
    return f"{printable(view.name)} ({view.id[:8]}): {names}{state}"
