"""p2pmsg.monitor"""
