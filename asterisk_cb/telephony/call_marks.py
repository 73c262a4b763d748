"""What marks a call as a scheduled callback: the caller ID the agent sees, and the channel variables.

The agent's phone shows the caller name in about 16 characters, so the name says "CB" (callback) and
then who will be called, and the number shown is the contact's: the agent knows before answering that
this is not an inbound call, and for whom. Names are already safe for caller-ID strings (core.rules
refuses quotes and dial-string metacharacters).

The variables carry a leading ``__`` so Asterisk copies them to every channel the leg creates (the
Local channel's other half, the PJSIP channel its dialplan dials): CDR/CEL rows of every channel of the
call can be tied to the callback and attempt. ``accountcode`` and ``userfield`` are never touched: they
belong to the admin's dialplan.
"""

from __future__ import annotations

from asterisk_cb.core.model import LegRole

DISPLAY_WIDTH = 16
CALLBACK_MARK = "CB"

CALLBACK_ID_VAR = "ACB_CALLBACK_ID"
ATTEMPT_ID_VAR = "ACB_ATTEMPT_ID"
LEG_ROLE_VAR = "ACB_LEG"
_INHERITED = "__"


def agent_caller_id(contact_name: str, contact_number: str) -> str:
    """``"CB <name or number>" <number>``, the name cut to what a phone display shows."""
    who = contact_name or contact_number
    name = f"{CALLBACK_MARK} {who}"[:DISPLAY_WIDTH].rstrip()
    return f'"{name}" <{contact_number}>'


def callback_variables(callback_id: str, attempt_id: str, role: LegRole) -> dict[str, str]:
    """Inherited variables for one leg of an attempt."""
    return {
        _INHERITED + CALLBACK_ID_VAR: callback_id,
        _INHERITED + ATTEMPT_ID_VAR: attempt_id,
        LEG_ROLE_VAR: role.value,  # not inherited: the leg's own role, not its children's
    }
