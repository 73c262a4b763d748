"""bench/calls.py's table: each measure for the floor, asterisk-cb and the call files, then asterisk-cb's
ratio to the floor and to the call files; a side without a figure gets an empty cell and no ratio."""

from __future__ import annotations

from ami_counts import DOCUMENTED, UNFILTERED
from calls import HEADER, Figures, case_rows
from harness import Lateness


def figures(ms: float, client_ms: float | None, documented: float) -> Figures:
    return Figures(
        lateness=Lateness((ms / 2, ms)),
        to_contact=Lateness((ms,)),
        requeue=None,
        paused=None,
        pause_to_ring=None,
        wall_s=ms / 100,
        rate=1000 / ms,
        cpu_ms={"asterisk": ms / 10} | ({} if client_ms is None else {"client": client_ms}),
        ami={DOCUMENTED: documented, UNFILTERED: 6 * documented},
        ami_names={"Hangup": documented / 2, "DeviceStateChange": documented / 2 + 1},
        invites=(2, 2),
    )


SIDES = {"floor": figures(100, 5, 20), "engine": figures(400, 20, 25), "baseline": figures(200, None, 10)}


def rows() -> dict[str, tuple[str, ...]]:
    return {row[0]: row for row in case_rows("case", 2, SIDES)}


def test_every_row_has_a_cell_per_column() -> None:
    assert {len(row) for row in case_rows("case", 2, SIDES)} == {len(HEADER)}


def test_latency_rows_give_asterisk_cb_to_the_floor_and_to_the_call_files_by_p99() -> None:
    due = rows()["due -> agent INVITE"]
    assert due[1:4] == (str(Lateness((50, 100))), str(Lateness((200, 400))), str(Lateness((100, 200))))
    assert due[4:] == ("p99 x4.00", "p99 x2.00")


def test_a_side_without_a_client_process_has_no_cpu_cell_and_no_ratio() -> None:
    assert rows()["client CPU per call (the daemon; the floor's script)"][1:] == (
        "5.0 ms",
        "20.0 ms",
        "",
        "x4.00",
        "",
    )


def test_ami_rows_give_each_sides_cut_and_names_most_first() -> None:
    table = rows()
    assert table["  the cut: read = all unfiltered / the documented user"][1:4] == ("x6.0", "x6.0", "x6.0")
    assert table["  the documented user's, by name"][2] == "DeviceStateChange 13.5, Hangup 12.5"
