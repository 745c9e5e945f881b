"""One module per `p2pmsg` command; each exposes `register(subparsers, common)`."""
