"""The node's network-facing half: what a stranger on the LAN can reach.

These modules meet bytes and packets before anyone is known to be honest
(connection admission, advertisements, the handshake's identity checks, the
session driver), so they sit together and are read as one attack surface.
They answer "who is at the other end, and may they cost us this?" and nothing
more: what runs over an authenticated session lives in `p2pmsg.node.services`
and `p2pmsg.node.transfers`, which see a session only as a `Channel`.
"""
