"""p2pmsg.node"""
