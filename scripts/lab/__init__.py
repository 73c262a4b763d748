"""The asterisk-cb test PBX lab: Asterisk 22 (Debian sid chroot), SIPp phones, Redis and PostgreSQL.

Standard library only, so `scripts/pbx-lab` runs before (and without) the project's virtualenv.
"""
