"""p2pmsg.store"""
