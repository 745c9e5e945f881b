"""p2pmsg.ui"""
