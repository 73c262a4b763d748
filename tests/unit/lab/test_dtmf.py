"""The lab's key presses (scripts/lab/dtmf.py): the pcap, read back here with its own parser, holds
the RFC 4733 events SIPp replays, at the times the key script says."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from lab import dtmf


@dataclass(frozen=True)
class Rtp:
    at_s: float
    marker: bool
    payload_type: int
    seq: int
    timestamp: int
    payload: bytes


def read_pcap(data: bytes) -> list[Rtp]:
    """Every RTP packet of a classic pcap of Ethernet/IPv4/UDP frames, checking the frames' headers;
    times in seconds from the first packet's second."""
    magic, major, minor, _, _, _, link_type = struct.unpack_from("<IHHiIII", data)
    assert (magic, major, minor, link_type) == (0xA1B2C3D4, 2, 4, 1)
    offset, packets, first_s = 24, [], None
    while offset < len(data):
        seconds, micros, captured, original = struct.unpack_from("<IIII", data, offset)
        frame = data[offset + 16 : offset + 16 + captured]
        offset += 16 + captured
        assert captured == original == len(frame)
        assert frame[12:14] == b"\x08\x00"  # IPv4
        ip = frame[14:34]
        assert ip[0] == 0x45 and ip[9] == 17  # no options, UDP
        assert struct.unpack("!H", ip[2:4])[0] == len(frame) - 14
        assert sum(struct.unpack("!10H", ip)) % 0xFFFF == 0  # a valid header checksum
        udp_length = struct.unpack("!H", frame[38:40])[0]
        assert udp_length == len(frame) - 34
        rtp = frame[42:]
        flags, marker_pt, seq, timestamp, _ = struct.unpack_from("!BBHII", rtp)
        assert flags == 0x80  # version 2, no padding, extension or CSRC
        first_s = seconds if first_s is None else first_s
        at_s = seconds - first_s + micros / 1e6
        packets.append(Rtp(at_s, bool(marker_pt & 0x80), marker_pt & 0x7F, seq, timestamp, rtp[12:]))
    return packets


def events(packets: list[Rtp]) -> list[Rtp]:
    return [packet for packet in packets if packet.payload_type == 101]


def key_presses(packets: list[Rtp]) -> list[tuple[int, float, list[Rtp]]]:
    """(event, start time, its packets) per key press: a press is the packets of one RTP timestamp."""
    presses: dict[int, list[Rtp]] = {}
    for packet in events(packets):
        presses.setdefault(packet.timestamp, []).append(packet)
    return [(group[0].payload[0], group[0].at_s, group) for group in presses.values()]


def test_each_key_is_one_event_with_growing_durations_then_three_end_packets() -> None:
    packets = read_pcap(dtmf.pcap(dtmf.parse("0:*7#0")))
    presses = key_presses(packets)
    assert [event for event, _, _ in presses] == [10, 7, 11, 0]
    for _, start_s, group in presses:
        assert [p.marker for p in group] == [True] + [False] * 10
        fields = [struct.unpack("!BBH", p.payload) for p in group]
        assert [flags & 0x80 for _, flags, _ in fields] == [0] * 8 + [0x80] * 3  # the E bit
        assert {flags & 0x3F for _, flags, _ in fields} == {10}  # volume
        assert [duration for _, _, duration in fields] == [160 * n for n in range(1, 9)] + [1280] * 3
        assert [round((p.at_s - start_s) * 1000) for p in group] == list(range(0, 220, 20))
        assert group[0].timestamp == round(start_s * 8000)


def test_keys_of_a_step_follow_each_other_80_ms_after_the_last_end_packet() -> None:
    starts = [start for _, start, _ in key_presses(read_pcap(dtmf.pcap(dtmf.parse("1:123"))))]
    assert starts == pytest.approx([1.0, 1.28, 1.56])


def test_pauses_are_real_gaps_counted_from_the_answer_then_from_the_step_before() -> None:
    packets = read_pcap(dtmf.pcap(dtmf.parse("2.0:*7 1.5:*30# 3:1")))
    assert (packets[0].at_s, packets[0].payload_type) == (0, 0)  # SIPp sends the first packet at once
    presses = key_presses(packets)
    assert "".join("0123456789*#"[event] for event, _, _ in presses) == "*7*30#1"
    starts = [start for _, start, _ in presses]
    # *7 from 2.0 s; its last end packet 0.28 + 0.2 s later; *30# 1.5 s after that; and so on.
    assert starts[:2] == pytest.approx([2.0, 2.28])
    assert starts[2] == pytest.approx(2.28 + 0.2 + 1.5)
    assert starts[6] == pytest.approx(starts[5] + 0.2 + 3)
    assert dtmf.duration_s(dtmf.parse("2.0:*7 1.5:*30# 3:1")) == pytest.approx(starts[6] + 0.2)


def test_sequence_numbers_count_every_packet_and_timestamps_follow_the_clock() -> None:
    packets = read_pcap(dtmf.pcap(dtmf.parse("0.5:1 0.2:D")))
    assert [p.seq for p in packets] == list(range(len(packets)))
    assert [p.at_s for p in packets] == sorted(p.at_s for p in packets)
    assert [event for event, _, _ in key_presses(packets)] == [1, 15]


@pytest.mark.parametrize("script", ["", "*7", "1:", "x:1", "1:*E", "-1:1", "1.:2"])
def test_a_malformed_script_is_refused_naming_the_step(script: str) -> None:
    with pytest.raises(SystemExit, match="key script"):
        dtmf.parse(script)


def test_no_packet_has_time_zero_which_sipp_takes_for_none_sent_yet() -> None:
    (seconds,) = struct.unpack_from("<I", dtmf.pcap(dtmf.parse("1:1")), 24)
    assert seconds > 0


def test_write_creates_the_file_for_sipp(tmp_path: Path) -> None:
    path = dtmf.write("0:5", tmp_path / "phones" / "keys.pcap")
    assert [event for event, _, _ in key_presses(read_pcap(path.read_bytes()))] == [5]
