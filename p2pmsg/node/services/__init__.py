"""The node's services: the jobs it runs once the network has done its part.

Kept apart from `p2pmsg.node.net` so that the code which meets strangers stays
small, and the code here can assume either an authenticated peer (delivery,
pairing) or no peer at all (the security log and its link to the monitor,
unlock events, message expiry). `Node` builds, wires and stops each of them;
the router hands them sessions (delivery sees only a `Channel`), and none of
them dials or listens. File transfers are a service too; they keep their own
package, `p2pmsg.node.transfers`, because they are large enough to need one.
"""
