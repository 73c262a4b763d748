"""Config file texts the unit tests share: the least a file must hold for ``deployment`` to load it."""

REQUIRED = """
[ari]
user = acb
password = pw
[ami]
user = acb
secret = pw
[dialing]
outbound_context = from-internal
"""
