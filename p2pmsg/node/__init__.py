"""The running messenger: the asyncio layer between the sans-I/O protocol and the UI.

Laid out by concern so that a reader knows where to look: `net` is what a
stranger on the LAN can reach, `services` and `transfers` are what runs for
peers once the network has done its part, and the modules at the top wire
those halves together (node.py builds the parts, router.py routes what
sessions deliver) or are shared by both (api.py, the one surface the UI sees;
config.py, bus.py, peers.py, channel.py, tasks.py).
"""
