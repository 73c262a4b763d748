"""Keys a lab phone presses during a call: RFC 4733 telephone-events in a pcap that SIPp replays
(`<exec play_pcap_audio=...>`), since sip-tester ships captures of single digits only.

A key script is space-separated steps `<pause seconds>:<keys>`: wait the pause, then press the keys
one after another. The first pause counts from the answer, each next one from the end of the step
before. `2.0:*7 1.5:*30# 3:1` = 2 s after the answer press * and 7; 1.5 s later *, 3, 0 and #; 3 s
later 1. Keys: 0-9, *, #, A-D (events 0-15).

SIPp sends a capture's first packet at once and each next one after the capture's own time gap, so
the capture starts with one 20 ms packet of PCMU silence at the answer: without it the first pause
would be lost. Each key is then events every 20 ms for 160 ms (one RTP timestamp, the duration
growing), three end packets (E bit) 20 ms apart and 80 ms of nothing before the next key.
"""

from __future__ import annotations

import argparse
import re
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

EVENTS = {**{str(digit): digit for digit in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}
PAYLOAD_TYPE = 101  # what the lab's phones offer for telephone-event/8000
VOLUME = 10  # -10 dBm0
CLOCK_RATE = 8000
PACKET_MS = 20
TONE_PACKETS = 8  # 160 ms of tone
END_PACKETS = 3  # RFC 4733 2.5.1.4: the final packet is sent three times
KEY_GAP_MS = 80
KEY_MS = (TONE_PACKETS + END_PACKETS - 1) * PACKET_MS + KEY_GAP_MS  # from one key's start to the next's
SSRC = 0x4C414221
# Ends of the capture's UDP packets: SIPp keeps none of them (it sends from the call's media port to
# the far end's), but its parser wants a well-formed Ethernet/IPv4/UDP frame.
SOURCE = (bytes((127, 0, 0, 1)), 6000)
DESTINATION = (bytes((127, 0, 0, 1)), 6002)
PCMU_SILENCE = b"\xff" * (CLOCK_RATE * PACKET_MS // 1000)
# When the capture's packets were "sent": SIPp 3.6 takes a packet time of 0 for "no packet yet" and
# would then send the next packet at once too, losing the first pause.
EPOCH_S = 1_700_000_000

_STEP = re.compile(r"(\d+(?:\.\d+)?):([0-9*#A-D]+)")


@dataclass(frozen=True)
class Step:
    """Wait pause_s, then press keys."""

    pause_s: float
    keys: str


@dataclass(frozen=True)
class Packet:
    """One RTP packet of the capture, at at_ms after the answer."""

    at_ms: int
    payload_type: int
    marker: bool
    timestamp: int
    payload: bytes


def parse(script: str) -> list[Step]:
    """The steps of a key script; SystemExit naming the step that is not `<seconds>:<keys>`."""
    steps = []
    for word in script.split():
        match = _STEP.fullmatch(word.upper())
        if match is None:
            raise SystemExit(
                f"pbx-lab: key script step {word!r} is not <pause seconds>:<keys> (keys 0-9 * # A-D)"
            )
        steps.append(Step(float(match.group(1)), match.group(2)))
    if not steps:
        raise SystemExit("pbx-lab: the key script is empty")
    return steps


def _event(key: str, duration: int, end: bool) -> bytes:
    return struct.pack("!BBH", EVENTS[key], (0x80 if end else 0) | VOLUME, duration)


def _key_packets(key: str, start_ms: int) -> Iterator[Packet]:
    timestamp = start_ms * CLOCK_RATE // 1000
    step = CLOCK_RATE * PACKET_MS // 1000
    for index in range(TONE_PACKETS):
        yield Packet(
            start_ms + index * PACKET_MS,
            PAYLOAD_TYPE,
            index == 0,
            timestamp,
            _event(key, (index + 1) * step, False),
        )
    for index in range(END_PACKETS):
        at_ms = start_ms + (TONE_PACKETS + index) * PACKET_MS
        yield Packet(at_ms, PAYLOAD_TYPE, False, timestamp, _event(key, TONE_PACKETS * step, True))


def packets(steps: list[Step]) -> list[Packet]:
    """The RTP packets of the steps, in sending order, the silence packet at the answer first."""
    result = [Packet(0, 0, True, 0, PCMU_SILENCE)]
    clock_ms = 0
    for step in steps:
        clock_ms += round(step.pause_s * 1000)
        for key in step.keys:
            result.extend(_key_packets(key, clock_ms))
            clock_ms += KEY_MS
        clock_ms -= KEY_GAP_MS  # the next pause counts from the last end packet's slot
    return result


def duration_s(steps: list[Step]) -> float:
    """How long the keys take from the answer to the last end packet."""
    return packets(steps)[-1].at_ms / 1000


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(rtp: bytes) -> bytes:
    """Ethernet, IPv4 and UDP (checksum 0: none, which IPv4 allows) around an RTP packet."""
    udp = struct.pack("!HHHH", SOURCE[1], DESTINATION[1], 8 + len(rtp), 0) + rtp
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, SOURCE[0], DESTINATION[0])
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    ethernet = bytes(6) + bytes((2, 0, 0, 0, 0, 1)) + struct.pack("!H", 0x0800)
    return ethernet + ip + udp


def pcap(steps: list[Step]) -> bytes:
    """A classic libpcap file (microsecond timestamps, Ethernet) of the steps' RTP packets."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for seq, packet in enumerate(packets(steps)):
        marker = 0x80 if packet.marker else 0
        rtp = struct.pack("!BBHII", 0x80, marker | packet.payload_type, seq & 0xFFFF, packet.timestamp, SSRC)
        frame = _frame(rtp + packet.payload)
        seconds, millis = divmod(packet.at_ms, 1000)
        out.append(struct.pack("<IIII", EPOCH_S + seconds, millis * 1000, len(frame), len(frame)) + frame)
    return b"".join(out)


def write(script: str, path: Path) -> Path:
    """Write the key script's capture to path (for SIPp's play_pcap_audio)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pcap(parse(script)))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a pcap of RFC 4733 key presses for a key script.")
    parser.add_argument("script", help='e.g. "2.0:*7 1.5:*30# 3:1"')
    parser.add_argument("pcap", type=Path)
    args = parser.parse_args(argv)
    write(args.script, args.pcap)
    return 0


if __name__ == "__main__":
    sys.exit(main())
