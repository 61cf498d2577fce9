#!/usr/bin/env python3
"""The Python reference of `cadenza ingest`'s parse + tokenize stage, for bench/ingest_bench.

What a Python user would write: mido parses each file (the note pairing of tests/tools/mido_notes.py), then
plain Python builds the same beat-level tokens as core/tokenizer.cc (docs/tokenizer.md): bars from the meter
map, Beat/Pos on a 12-steps-a-quarter grid, Tempo bins, Program, Pitch, Velocity bin, Duration.

  /usr/bin/python3 bench/reference_ingest.py DIR [--jobs N] [--digest FILE]

Prints one JSON line: files, pieces, skipped, notes, tokens, bars, seconds (wall, measured inside the script:
from before the folder walk to the end, so without interpreter start-up and `import mido`). --digest writes
"relative/path sha256" per file, in sorted path order, the sha256 of the token ids as little-endian int32 (or
"-" for a file that did not parse), so the benchmark can check that both implementations produce the same tokens.

Run it with Debian's /usr/bin/python3 (it has mido; the pyenv python3 on PATH does not).

Where this can differ from cadenza, by design: only in which malformed files are refused. mido 1.2 and
core/midi_reader.cc are independent parsers with their own strictness: cadenza refuses a track chunk without
an end-of-track event, format 2, SMPTE time division, a time signature with numerator 0 or a denominator above
2^6 (mido reads all of these); mido reads exactly the number of tracks the header declares and refuses a
chunk other than MTrk among them (cadenza skips unknown chunks). Both refuse a key signature outside -7..7,
and a tempo of 0 (here it fails in the tempo bin). A file refused by one side only is listed by the
benchmark's token check as differing. It also counts a parsed file with no notes as
a piece (cadenza skips it from the dataset, but its tokens are still compared). On the shared corpora
(Nottingham, POP909) every file parses on both sides and the tokens are identical.
"""
import argparse
import hashlib
import json
import math
import os
import struct
import sys
import time
from multiprocessing import Pool

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'tools'))
import mido_notes  # noqa: E402

GRID = 12
MAX_DURATION = 192
MAX_BARS = 20000
DENOMINATORS = (2, 4, 8, 16)
# Token id bases of vocabulary cadenza-remi-beat v1 (core/vocabulary.cc).
BOS, EOS, BAR = 1, 2, 3
TIMESIG, BEAT, POS, TEMPO, PROGRAM, PITCH, VELOCITY, DURATION = 4, 68, 84, 108, 147, 276, 404, 436
DRUMS = 128


def lround(x):
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def tempo_bin(bpm):
    if not bpm > 0:
        return 24
    return min(max(lround(12.0 * math.log2(bpm / 120.0)) + 24, 0), 38)


def supported(n, d):
    return 1 <= n <= 16 and d in DENOMINATORS


def beat_steps(n, d):
    unit = 4 * GRID // d
    return 3 * unit if (d >= 8 and n % 3 == 0 and n > 3) else unit


def short_bar_meter(length, denominator):
    d = denominator
    while d <= 16:
        unit = 4 * GRID // d
        if length % unit == 0 and length // unit <= 16:
            return length // unit, d
        d *= 2
    return None


def tokenize(tpq, raw_notes, raw_tempos, raw_meters):
    tpq = tpq if tpq > 0 else 480

    def to_step(tick):
        return (2 * GRID * tick + tpq) // (2 * tpq)

    meters = []
    for tick, n, d in raw_meters:
        m = [to_step(tick), n, d] if supported(n, d) else [to_step(tick), 4, 4]
        if meters and meters[-1][0] == m[0]:
            meters.pop()
        meters.append(m)
    if not meters or meters[0][0] > 0:
        meters.insert(0, [0, 4, 4])

    # (inst, pitch, on, off, velocity); same onset/instrument/pitch keeps the longest, then the loudest; a held note is cut
    # at the next onset of its pitch.
    grid = []
    for start, end, pitch, vel, chan, prog, _ in raw_notes:
        on = to_step(start)
        grid.append((DRUMS if chan == 9 else prog, pitch, on, max(to_step(end), on + 1), vel))
    grid.sort(key=lambda g: (g[0], g[1], g[2], -g[3], -g[4]))
    kept = []
    for g in grid:
        if kept and kept[-1][0] == g[0] and kept[-1][1] == g[1]:
            if kept[-1][2] == g[2]:
                continue
            last = kept[-1]
            kept[-1] = (last[0], last[1], last[2], min(last[3], g[2]), last[4])
        kept.append(g)
    kept.sort(key=lambda g: (g[2], g[0], g[1]))

    tempos = [[0, 24]]
    for tick, us in raw_tempos:
        step, b = to_step(tick), tempo_bin(60e6 / us)
        if tempos[-1][0] == step:
            tempos.pop()
        if not tempos or tempos[-1][1] != b:
            tempos.append([step, b])

    last_onset = kept[-1][2] if kept else 0
    bars = []  # (start, length, n, d)
    start, mi = 0, 0
    while start <= last_onset:
        while mi + 1 < len(meters) and meters[mi + 1][0] <= start:
            mi += 1
        n, d = meters[mi][1], meters[mi][2]
        bar = (start, n * 4 * GRID // d, n, d)
        if mi + 1 < len(meters) and meters[mi + 1][0] < start + bar[1]:
            cut = meters[mi + 1][0] - start
            short = short_bar_meter(cut, d)
            if short:
                bar = (start, cut, short[0], short[1])
            else:
                meters[mi + 1][0] = start + bar[1]
        bars.append(bar)
        if len(bars) > MAX_BARS:
            raise ValueError('piece has more than %d bars' % MAX_BARS)
        start += bar[1]

    tok = [BOS]
    bar_offsets = []
    ni = ti = 0
    current_tempo = -1
    for bstart, length, n, d in bars:
        bar_offsets.append(len(tok))
        tok.append(BAR)
        tok.append(TIMESIG + DENOMINATORS.index(d) * 16 + n - 1)
        bs = beat_steps(n, d)
        end = bstart + length
        last_beat = current_inst = -1
        while ti < len(tempos) and tempos[ti][0] < bstart:
            ti += 1
        while (ni < len(kept) and kept[ni][2] < end) or (ti < len(tempos) and tempos[ti][0] < end):
            step = end
            if ni < len(kept):
                step = min(step, kept[ni][2])
            if ti < len(tempos):
                step = min(step, tempos[ti][0])
            rel = step - bstart
            beat = rel // bs
            if beat != last_beat:
                tok.append(BEAT + beat)
                last_beat = beat
            tok.append(POS + rel % bs)
            if ti < len(tempos) and tempos[ti][0] == step:
                if tempos[ti][1] != current_tempo:
                    tok.append(TEMPO + tempos[ti][1])
                current_tempo = tempos[ti][1]
                ti += 1
            while ni < len(kept) and kept[ni][2] == step:
                inst, pitch, on, off, vel = kept[ni]
                if inst != current_inst:
                    tok.append(PROGRAM + inst)
                    current_inst = inst
                tok.append(PITCH + pitch)
                tok.append(VELOCITY + (min(max(vel, 1), 127) - 1) // 4)
                tok.append(DURATION + min(off - on, MAX_DURATION) - 1)
                ni += 1
    tok.append(EOS)
    return tok, bar_offsets, len(kept)


def process(args):
    root, rel = args
    try:
        tpq, notes, tempos, meters = mido_notes.read_score(os.path.join(root, rel))
        tok, bars, n = tokenize(tpq, notes, tempos, meters)
    except Exception as e:  # a file that does not parse is skipped, as cadenza does
        return rel, None, 0, 0, str(e)
    digest = hashlib.sha256(struct.pack('<%di' % len(tok), *tok)).hexdigest()
    return rel, digest, n, len(tok), len(bars)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('dir')
    ap.add_argument('--jobs', type=int, default=1)
    ap.add_argument('--digest')
    a = ap.parse_args()
    t0 = time.perf_counter()
    files = []
    for dirpath, _, names in os.walk(a.dir):  # like cadenza: symlinked folders are not followed
        for name in names:
            if name.lower().endswith(('.mid', '.midi')):
                files.append(os.path.relpath(os.path.join(dirpath, name), a.dir))
    files.sort()
    work = [(a.dir, f) for f in files]
    if a.jobs > 1:
        with Pool(a.jobs) as pool:
            results = pool.map(process, work, chunksize=8)
    else:
        results = [process(w) for w in work]
    seconds = time.perf_counter() - t0
    ok = [r for r in results if r[1] is not None]
    if a.digest:
        with open(a.digest, 'w') as f:
            for rel, digest, *_ in results:
                f.write('%s %s\n' % (rel, digest or '-'))
    print(json.dumps({'files': len(files), 'pieces': len(ok), 'skipped': len(files) - len(ok),
                      'notes': sum(r[2] for r in ok), 'tokens': sum(r[3] for r in ok),
                      'bars': sum(r[4] for r in ok), 'seconds': seconds}))


if __name__ == '__main__':
    main()
