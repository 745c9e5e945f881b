"""p2pmsg.crypto"""
