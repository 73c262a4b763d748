"""Answers no daemon saw: Asterisk writes them into its AstDB, the daemon that resumes the call reads them.

Why: a daemon that dies while the contact rings leaves the call up, and the contact may answer, talk
and hang up before another daemon takes the callback over (the lease lapses after 30 s). The resumer
then finds no channel; without a record it could only count a lost ring and dial the contact again,
although they talked. Nothing of ours watches meanwhile, so Asterisk itself keeps the record, in
AstDB because that survives an Asterisk restart (the CDR is no source: not every PBX has one).

How (measured on the lab's Asterisk 22):

* The channels whose answer matters get a hangup handler when the daemon creates them, through the
  channel variable ``CHANNEL(hangup_handler_push)`` passed with the create request (``handler``):
  the contact's Local channel in the agent phase (its answer is the talk), and in the queue phase
  the Local channel that waits in the failover queue (its answer is a member taking the contact).
  The contact's Local channel of the queue phase gets none: its answer alone serves nobody.
* Whatever the daemon gives such a channel must go with the create request: a variable set later
  through ARI is set in the channel's own thread, and Asterisk then refuses the handler's AstDB write
  there ("Dangerous function DB write blocked", measured) - except the pop below, which ends the
  handler's use anyway.
* The handler runs on the half we created (``;1``, the one in our Stasis app), however the call ends;
  it still reads ``CHANNEL(state)`` = ``Up`` when the channel was answered. The context
  ``callback-answered`` (dialplan/callback-outbound.conf) then writes ``DB(acb/<channel id>)`` =
  the hangup's epoch, and nothing for a channel that was never answered.
* With AMD on, a machine is no answer: the handler skips a channel whose ``AMDSTATUS`` is MACHINE,
  and the AMD context removes the handler when it gives up waiting for a daemon to take the verdict
  (the contact was never put through).
* A daemon that sees the answer itself pops the handler (``CHANNEL(hangup_handler_pop)``) right after
  committing it, so marks are written only for answers nobody saw: at most one per call that was
  live when its daemon died.
* The resumer reads a mark with AMI ``DBGet`` (allowed by ``write = reporting``) and leaves it: it
  is read again only if the same channel id is resumed, which never happens (ids are per attempt).
  Deleting it over AMI (``DBDel``) would need ``write = system``, which also lets the user write and
  delete every AstDB family and reload or restart Asterisk; ARI cannot delete (``GET
  /asterisk/variable`` evaluates no function, AMI ``Getvar`` refuses ``DB_DELETE``: functions with
  side effects are not run for external protocols). So Asterisk purges them itself: the handler,
  when it writes a mark, deletes the marks older than 30 days (a resume comes within a lease of a
  daemon starting, so only an outage of every daemon longer than that would miss one). At most one
  mark per call that was live when its daemon died is kept that long.

Not covered: an Asterisk killed (not stopped) while no daemon watches runs no hangup handler, so that
answer is not known and counts as a lost ring, as before.
"""

from __future__ import annotations

from asterisk_cb.telephony.ami import AmiConnection, AmiError

FAMILY = "acb"
HANDLER_CONTEXT = "callback-answered"
_NOT_FOUND = "not found"  # DBGet's answer for a missing key: "Database entry not found"


def handler(channel_id: str) -> dict[str, str]:
    """The create request's variable that makes Asterisk record the channel's answer at its hangup."""
    return {"CHANNEL(hangup_handler_push)": f"{HANDLER_CONTEXT},s,1({FAMILY}/{channel_id})"}


POP_HANDLER = "CHANNEL(hangup_handler_pop)"  # set on a channel whose answer the daemon committed


class AnswerMarks:
    """Reads the marks over the daemon's AMI link."""

    def __init__(self, ami: AmiConnection) -> None:
        self.ami = ami

    async def answered(self, channel_id: str) -> bool:
        """Whether Asterisk recorded an answer of ``channel_id``. Raises AmiError when AMI cannot
        tell (link down): the caller must not guess."""
        try:
            await self.ami.send({"Action": "DBGet", "Family": FAMILY, "Key": channel_id})
        except AmiError as error:
            if _absent(error):
                return False
            raise
        return True


def _absent(error: AmiError) -> bool:
    return _NOT_FOUND in str(error).lower()
