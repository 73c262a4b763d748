"""asterisk-cb: scheduled callbacks for the Asterisk PBX."""

__version__ = "0.1.0"
