"""What a callback's calls write into the CDR Asterisk itself keeps: the mark a report filters on and the
optional ``acb_*`` values, per leg of an attempt.

The mark is one standard CDR field set to one text on every row of a callback's calls, so the
unchanged schema and FreePBX's CDR search (which searches ``userfield`` and ``accountcode``, not
``dcontext``) find them. ``userfield`` by default: an admin's ``accountcode`` often already means
billing (a customer, a department), and Asterisk copies a channel's accountcode to the channels it
dials, so a mark there would replace what the billing reads. The ``acb_*`` values land in columns of
the same name when the admin adds them (cdr_pgsql looks every column up as a CDR variable of that
name, cdr_adaptive_odbc matches by name): which callback, which attempt, which phase, which leg, and
the linkedid of the call the callback was requested on (a callback's own calls have a linkedid of
their own: the agent's channel originates them).

Pure: the telephony side turns these values into channel variables (``telephony.call_marks``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from asterisk_cb.core.model import Callback, LegRole

DEFAULT_TEXT = "scheduled-callback"
# Asterisk keeps an accountcode in 80 characters (AST_MAX_ACCOUNT_CODE); no ";" (Asterisk joins
# two parties' userfields with it), no "," "|" "(" ")" "$" "{" "}" that the dialplan's Set() and
# ExecIf() read as syntax.
_TEXT = re.compile(r"[A-Za-z0-9_.:+-]{1,80}\Z")

ID, ATTEMPT, PHASE, LEG = "acb_id", "acb_attempt", "acb_phase", "acb_leg"
AGENT, ORIGIN_LINKEDID = "acb_agent", "acb_origin_linkedid"
COLUMNS = (ID, ATTEMPT, PHASE, LEG, AGENT, ORIGIN_LINKEDID)  # the optional columns, in the README's order


class MarkField(StrEnum):
    """The standard CDR field that carries the mark (``none``: no mark, the ``acb_*`` values only)."""

    USERFIELD = "userfield"
    ACCOUNTCODE = "accountcode"
    NONE = "none"


@dataclass(frozen=True)
class CdrMark:
    """``[dialing] cdr_mark_field`` and ``cdr_mark_text``."""

    field: MarkField = MarkField.USERFIELD
    text: str = DEFAULT_TEXT

    @classmethod
    def parse(cls, field: str, text: str) -> CdrMark:
        """The two options as written; ValueError names the bad one (``field: reason``)."""
        try:
            chosen = MarkField(field.strip().lower() or MarkField.USERFIELD)
        except ValueError:
            known = ", ".join(member.value for member in MarkField)
            raise ValueError(f"cdr_mark_field: {field!r} is not one of {known}") from None
        text = text.strip() or DEFAULT_TEXT
        if not _TEXT.match(text):
            reason = "1-80 letters, digits and _.:+- (no spaces)"
            raise ValueError(f"cdr_mark_text: {text!r} is not {reason}")
        return cls(chosen, text)


def leg_values(mark: CdrMark, callback: Callback, attempt_id: str, role: LegRole) -> dict[str, str]:
    """CDR name -> value for one leg of the attempt ``attempt_id``: the mark (unless ``none``) and the
    ``acb_*`` values. The attempt is numbered as every attempt of the callback counts, rings the
    agent missed included (its id's ``-<n>``); an empty value is left out (nothing to write)."""
    numbered = {found.id: (n, found) for n, found in enumerate(callback.attempts, start=1)}
    if attempt_id not in numbered:  # never: a leg is dialled for an attempt already on record
        raise ValueError(f"callback {callback.id} has no attempt {attempt_id}")
    number, attempt = numbered[attempt_id]
    values = {
        ID: callback.id,
        ATTEMPT: str(number),
        PHASE: attempt.phase.value,
        LEG: role.value,
        AGENT: callback.agent,  # the owner: who promised the call (a queue member may take it)
        ORIGIN_LINKEDID: callback.origin_linkedid or "",
    }
    if mark.field is not MarkField.NONE:
        values[mark.field.value] = mark.text
    return {name: value for name, value in values.items() if value}
