#!/usr/bin/env python3
"""Reads MIDI files with mido (an independent parser) and prints their notes, for cross-checking cadenza.

Pairing rules match docs/midi.md: per (track, channel, pitch) a note-off (or note-on with velocity 0)
closes the oldest sounding note; notes never released end at their track's last tick; a note's program is
its channel's latest program change, programs applied before notes at the same tick; channel 10 is drums.

  mido_notes.py --text FILE          one line per note: start end pitch velocity channel program
  mido_notes.py --json FILE [FILE..] {"file": ..., "tpq": ..., "notes": [[start,end,pitch,vel,chan,prog,track],...]}
"""
import collections
import io
import json
import sys

import mido


def read_score(path):
    """One parse: (tpq, notes, tempos [(tick, us_per_quarter)], meters [(tick, numerator, denominator)]).

    Meta events at one tick: the last (by track, then file order) wins, as in cadenza's reader."""
    return read_score_with_pedal(path)[:4]


def read_score_with_pedal(path):
    """read_score's four values, then the sustain pedal [(tick, channel, down)] (control 64, value >= 64 down) in
    the order cadenza's reader keeps (by tick, then track, then file order), then the end tick (latest track end)."""
    return score_of(mido.MidiFile(path, clip=False))


def read_score_from_bytes(data):
    """read_score_with_pedal of a file already in memory (bench/reference_ingest.py --parse times this)."""
    return score_of(mido.MidiFile(file=io.BytesIO(data), clip=False))


def score_of(mid):
    """read_score_with_pedal's six values of a parsed mido.MidiFile."""
    meta = {}  # kind -> {tick: value}
    events = []  # (tick, class, track, seq, msg)
    seq = 0
    track_end = {}
    for ti, track in enumerate(mid.tracks):
        tick = 0
        for msg in track:
            tick += msg.time
            seq += 1
            if msg.type == 'program_change':
                events.append((tick, 0, ti, seq, msg))
            elif msg.type == 'set_tempo':
                events.append((tick, 0, ti, seq, msg))
            elif msg.type == 'time_signature':
                events.append((tick, 0, ti, seq, msg))
            elif msg.type in ('note_on', 'note_off'):
                events.append((tick, 1, ti, seq, msg))
            elif msg.type == 'control_change' and msg.control == 64:
                events.append((tick, 1, ti, seq, msg))
        track_end[ti] = tick
    events.sort(key=lambda e: e[:4])
    program = [0] * 16
    sounding = collections.defaultdict(collections.deque)
    notes = []
    pedal = []
    for tick, _, ti, _, msg in events:
        if msg.type == 'control_change':
            pedal.append((tick, msg.channel, msg.value >= 64))
        elif msg.type == 'program_change':
            program[msg.channel] = msg.program
        elif msg.type == 'set_tempo':
            meta.setdefault('tempo', {})[tick] = msg.tempo
        elif msg.type == 'time_signature':
            meta.setdefault('meter', {})[tick] = (msg.numerator, msg.denominator)
        elif msg.type == 'note_on' and msg.velocity > 0:
            sounding[(ti, msg.channel, msg.note)].append((tick, msg.velocity, program[msg.channel]))
        else:
            q = sounding.get((ti, msg.channel, msg.note))
            if q:
                start, vel, prog = q.popleft()
                notes.append((start, tick, msg.note, vel, msg.channel, prog, ti))
    for (ti, ch, pitch), q in sounding.items():
        for start, vel, prog in q:
            notes.append((start, max(start, track_end[ti]), pitch, vel, ch, prog, ti))
    notes = [(s, e, p, v, c, 0 if c == 9 else pr, t) for (s, e, p, v, c, pr, t) in notes]
    notes.sort(key=lambda n: (n[0], n[6], n[4], n[2], n[1]))
    tempos = sorted(meta.get('tempo', {}).items())
    meters = [(t, n, d) for t, (n, d) in sorted(meta.get('meter', {}).items())]
    return mid.ticks_per_beat, notes, tempos, meters, pedal, max(track_end.values(), default=0)


def read_notes(path):
    tpq, notes, _, _ = read_score(path)
    return tpq, notes


def main(argv):
    if len(argv) >= 2 and argv[0] == '--text':
        _, notes = read_notes(argv[1])
        for s, e, p, v, c, pr, _ in notes:
            print(s, e, p, v, c, pr)
        return 0
    if len(argv) >= 2 and argv[0] == '--json':
        for path in argv[1:]:
            tpq, notes = read_notes(path)
            print(json.dumps({'file': path, 'tpq': tpq, 'notes': notes}))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
