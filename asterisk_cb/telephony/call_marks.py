"""What marks a call as a scheduled callback: the caller ID the agent sees, the channel variables, and
the values the CDR rows of the call carry.

The agent's phone shows the caller name in about 16 characters, so the name says "CB" (callback) and
then who will be called, and the number shown is the contact's: the agent knows before answering that
this is not an inbound call, and for whom. Names are already safe for caller-ID strings (core.rules
refuses quotes and dial-string metacharacters).

``ACB_CALLBACK_ID``/``ACB_ATTEMPT_ID`` carry a leading ``__`` so Asterisk copies them to every channel
the leg creates (the Local channel's other half, the PJSIP channel its dialplan dials).

CDR (``core.cdr_marks`` says what and why; README "CDR: finding callback calls"): the CDR mark
(``[dialing] cdr_mark_field``, ``userfield`` by default, or ``accountcode``) and the ``acb_*`` CDR
variables are set on every channel the daemon creates, as ``CDR(<name>)`` (the accountcode as
``CHANNEL(accountcode)``: ``CDR(accountcode)`` is deprecated) in the originate's own variables.
Measured on Asterisk 22.10: they land in the row (``acb_*`` in columns of that name), and the
originate answers in 0.03 s (the 2017 freeze with ``CDR(accountcode)`` there, ASTERISK-27460, is
gone). A Local channel's dialplan half gets its own CDR, which no request of ours can reach (ARI
sets variables only on channels in Stasis): it gets the values as plain variables (a Local channel
copies all of its first half's variables to the second when dialled), and the context
``callback-cdr-mark`` (dialplan/callback-outbound.conf), which ``callback-outbound`` and
``callback-queue`` run first, writes them into its CDR. Nothing else of the admin's is touched: with
``cdr_mark_field = none`` neither ``userfield`` nor ``accountcode`` is.
"""

from __future__ import annotations

from collections.abc import Mapping

from asterisk_cb.core import cdr_marks
from asterisk_cb.core.cdr_marks import CdrMark, MarkField, leg_values
from asterisk_cb.core.model import Callback, LegRole
from asterisk_cb.core.settings import CallerId

DISPLAY_WIDTH = 16
CALLBACK_MARK = "CB"

CALLBACK_ID_VAR = "ACB_CALLBACK_ID"
ATTEMPT_ID_VAR = "ACB_ATTEMPT_ID"
LEG_ROLE_VAR = "ACB_LEG"
_INHERITED = "__"
MARK_CONTEXT = "callback-cdr-mark"  # dialplan/callback-outbound.conf: marks the Local halves' rows
# What callback-cdr-mark reads on a Local channel's dialplan half: the mark's field and text, and
# one variable per ``acb_*`` value (ACB_CALLBACK_ID and ACB_LEG above are the other two).
CDR_FIELD_VAR, CDR_TEXT_VAR = "ACB_CDR_FIELD", "ACB_CDR_TEXT"
DIALPLAN_VARS = {
    cdr_marks.ATTEMPT: "ACB_ATTEMPT",
    cdr_marks.PHASE: "ACB_PHASE",
    cdr_marks.AGENT: "ACB_CDR_AGENT",
    cdr_marks.ORIGIN_LINKEDID: "ACB_ORIGIN_LINKEDID",
}


def agent_caller_id(contact_name: str, contact_number: str) -> str:
    """``"CB <name or number>" <number>``, the name cut to what a phone display shows."""
    who = contact_name or contact_number
    name = f"{CALLBACK_MARK} {who}"[:DISPLAY_WIDTH].rstrip()
    return f'"{name}" <{contact_number}>'


def presented_caller_id(caller_id: CallerId) -> dict[str, str]:
    """The caller ID the contact is to see, as variables of the agent leg's originate (empty parts:
    the dialplan's own choice).

    Measured on Asterisk 22.10: ARI's ``callerId`` sets both the new channel's caller and its
    connected line, and the agent's phone shows the connected line (the INVITE's From stays
    ``"CB <contact>"``); ``CALLERID()`` in the variables sets the caller only. The contact's Local
    channel takes its caller ID from the agent leg's caller once they share the bridge. A variable
    set through ARI while the phone rings is refused (409: not in Stasis), so it goes with the
    originate rather than in two requests after the answer, when the contact waits for them."""
    return {"CALLERID(name)": caller_id.name, "CALLERID(num)": caller_id.number}


def callback_variables(
    callback: Callback, attempt_id: str, role: LegRole, mark: CdrMark, *, party_b: bool = False
) -> dict[str, str]:
    """Variables for one leg of an attempt: the inherited ids, the leg's role, its CDR values.

    ``party_b``: a Local channel the daemon bridges with an older channel of the call (the
    contact's, with the agent's; the queue's, with the contact's). The row of that bridge is the
    older channel's, and Asterisk writes its userfield followed by ";" and party B's when party B
    has one (measured: ``scheduled-callback;scheduled-callback``): this one gets no userfield."""
    values = leg_values(mark, callback, attempt_id, role)
    own = {name: value for name, value in values.items() if not (party_b and name == MarkField.USERFIELD)}
    return {
        _INHERITED + CALLBACK_ID_VAR: callback.id,
        _INHERITED + ATTEMPT_ID_VAR: attempt_id,
        LEG_ROLE_VAR: role.value,  # not inherited: the leg's own role, not its children's
        **_cdr_variables(own),
        **_dialplan_half_variables(mark, values),
    }


def _cdr_variables(values: Mapping[str, str]) -> dict[str, str]:
    """The CDR values as the channel variables that write them into the channel's own CDR."""
    return {_cdr_target(name): value for name, value in values.items()}


def _cdr_target(name: str) -> str:
    return "CHANNEL(accountcode)" if name == MarkField.ACCOUNTCODE.value else f"CDR({name})"


def _dialplan_half_variables(mark: CdrMark, values: Mapping[str, str]) -> dict[str, str]:
    """What ``callback-cdr-mark`` reads on a Local channel's dialplan half (the ids and the role are
    there already). Not inherited: the PJSIP channels that half dials write no row of their own."""
    found = {variable: values[name] for name, variable in DIALPLAN_VARS.items() if name in values}
    if mark.field is not MarkField.NONE:
        found |= {CDR_FIELD_VAR: mark.field.value, CDR_TEXT_VAR: mark.text}
    return found
