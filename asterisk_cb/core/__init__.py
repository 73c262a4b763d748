"""The pure core: no IO, no clock reads, no randomness (time and ids are arguments).

model     what a callback is (states, phases, attempts, legs, events)
codec     flat encodings for a Redis hash and a stream entry
rules     dialable numbers, safe names, due times, zones, calling hours
settings  options, their syntax, agent > queue > general resolution, provenance
ini       Asterisk-style INI text with line numbers
inputs    what can happen to a callback
effects   what the executor must do about it
lifecycle the state machine tying them together
"""
