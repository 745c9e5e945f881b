"""p2pmsg.protocol"""
