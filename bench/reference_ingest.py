#!/usr/bin/env python3
"""The Python reference of `cadenza ingest`'s parse + tokenize stage, for bench/ingest_bench.

What a Python user would write: mido parses each file (the note pairing of tests/tools/mido_notes.py), then
plain Python builds the same beat-level tokens as core/tokenizer.cc (docs/tokenizer.md, vocabulary
cadenza-remi-beat-g12 v2): the sustain pedal applied to note ends, bars from the meter map (meters the grid cannot
hold skipped), Beat/Pos on a 12-steps-a-quarter grid, Tempo bins of each span's mean tempo, Program, Pitch,
Velocity bin, Duration.

  /usr/bin/python3 bench/reference_ingest.py DIR [--jobs N] [--digest FILE]
  /usr/bin/python3 bench/reference_ingest.py DIR --parse [--repeat N]

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
benchmark's token check as differing.

--parse times the reader alone, as ingest_bench's parse table does for cadenza: every file is read into memory
first (untimed), then mido parses all of them from bytes and pairs their notes (mido_notes.score_of), best of
--repeat rounds; it prints files, notes, skipped, seconds (the best round) and runs (every round). It also counts a parsed file with no notes as
a piece (cadenza skips it from the dataset, but its tokens are still compared). On the shared corpora
(Nottingham, POP909) every file parses on both sides and the tokens are identical.
"""
import argparse
import bisect
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
MAX_DURATION = 16 * GRID
MAX_BARS = 20000
DENOMINATORS = (1, 2, 4, 8, 16, 32, 64)
MAX_NUMERATOR = 64
TEMPO_BINS, TEMPO_120, PER_OCTAVE = 386, 259, 72
# Token id bases of vocabulary cadenza-remi-beat-g12 v2 (core/vocabulary.cc).
BOS, EOS, BAR = 1, 2, 3
TIMESIG, BEAT, POS, TEMPO, PROGRAM, PITCH, VELOCITY, DURATION = 4, 452, 516, 564, 950, 1079, 1207, 1239
DRUMS = 128
INT64_MAX = 2 ** 63 - 1


def lround(x):
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def tempo_bin(bpm):
    if not bpm > 0:
        return TEMPO_120
    x = PER_OCTAVE * math.log2(bpm / 120.0) + TEMPO_120
    if not x > 0:
        return 0
    if x >= TEMPO_BINS - 1:
        return TEMPO_BINS - 1
    return lround(x)


def tempo_of_bin(b):
    return 120.0 * math.pow(2.0, (b - TEMPO_120) / PER_OCTAVE)


def representable(n, d):
    return 1 <= n <= MAX_NUMERATOR and d in DENOMINATORS and (n * 4 * GRID) % d == 0


def steps_of(d):
    return 4 * GRID // d if (4 * GRID) % d == 0 else 0


def beat_steps(n, d):
    units = d // math.gcd(4 * GRID, d)
    if units > 1:
        return units * 4 * GRID // d
    unit = 4 * GRID // d
    return 3 * unit if (d >= 8 and n % 3 == 0 and n > 3) else unit


def short_bar_meter(length, denominator):
    d = denominator
    while d <= DENOMINATORS[-1]:
        unit = steps_of(d)
        if unit > 0 and length % unit == 0 and length // unit <= MAX_NUMERATOR:
            return length // unit, d
        d *= 2
    return None


def sustained_ends(raw_notes, pedal, end_tick):
    """core/tokenizer.cc SustainedNoteEnds: a key released strictly inside a pedal-down span of its channel is
    held to the pedal's release, or to the next onset of its pitch on that channel if sooner."""
    ends = [n[1] for n in raw_notes]
    if not pedal:
        return ends
    last = max([end_tick] + ends)
    spans = [[] for _ in range(16)]
    down_at = [-1] * 16
    for tick, chan, down in pedal:
        if down and down_at[chan] < 0:
            down_at[chan] = tick
        elif not down and down_at[chan] >= 0:
            if tick > down_at[chan]:
                spans[chan].append((down_at[chan], tick))
            down_at[chan] = -1
    for c in range(16):
        if down_at[c] >= 0 and last > down_at[c]:
            spans[c].append((down_at[c], last))
    downs = [[sp[0] for sp in spans[c]] for c in range(16)]
    next_onset = [INT64_MAX] * len(raw_notes)
    seen = {}
    for i in range(len(raw_notes) - 1, -1, -1):
        start, _, pitch, _, chan, _, _ = raw_notes[i]
        s = seen.get((chan, pitch), INT64_MAX)
        if s != INT64_MAX and s > start:
            next_onset[i] = s
        if s == INT64_MAX or start < s:
            seen[(chan, pitch)] = start
    for i, (start, end, pitch, _, chan, _, _) in enumerate(raw_notes):
        sp = spans[chan]
        if not sp:
            continue
        k = bisect.bisect_left(downs[chan], end)  # first span pressed at or after the release
        if k == 0:
            continue
        down, up = sp[k - 1]
        if not (down < end < up):
            continue
        ends[i] = max(end, min(up, next_onset[i]))
    return ends


class TempoClock:
    def __init__(self, raw_tempos, tpq):
        self.tpq = float(tpq)
        self.ticks, self.us, self.seconds = [0.0], [500000.0], [0.0]
        seconds, last_tick, us = 0.0, 0.0, 500000.0
        for tick, value in raw_tempos:
            tick = float(max(tick, 0))
            seconds += (tick - last_tick) * us / (1e6 * self.tpq)
            last_tick, us = tick, float(value)
            if self.ticks[-1] == tick:
                self.us[-1] = us
            else:
                self.ticks.append(tick)
                self.us.append(us)
                self.seconds.append(seconds)

    def seconds_at(self, tick):
        i = bisect.bisect_right(self.ticks, tick) - 1
        return self.seconds[i] + (tick - self.ticks[i]) * self.us[i] / (1e6 * self.tpq)

    def bpm_at(self, tick):
        return 60e6 / self.us[bisect.bisect_right(self.ticks, tick) - 1]


def grid_tempos(raw_tempos, tpq, end_step):
    """core/tokenizer.cc GridTempos: each span between tempo changes on the grid gets the bin of its mean tempo,
    the bin around it that keeps the running time closer to the file's."""
    clock = TempoClock(raw_tempos, tpq)
    steps = [0]
    for tick, _ in raw_tempos:
        s = (2 * GRID * tick + tpq) // (2 * tpq)
        if s > steps[-1]:
            steps.append(s)
    spans = []  # [a, b, seconds, bpm]
    for i, a in enumerate(steps):
        b = steps[i + 1] if i + 1 < len(steps) else max(end_step, a)
        if b > a:
            secs = clock.seconds_at(float(b) * tpq / GRID) - clock.seconds_at(float(a) * tpq / GRID)
            bpm = 60.0 * (b - a) / GRID / secs
        else:
            secs, bpm = 0.0, clock.bpm_at(float(a) * tpq / GRID)
        if spans and tempo_bin(spans[-1][3]) == tempo_bin(bpm):
            if b > a:
                prev = spans[-1]
                prev[1] = b
                prev[2] += secs
                prev[3] = 60.0 * (prev[1] - prev[0]) / GRID / prev[2]
            continue
        spans.append([a, b, secs, bpm])
    out = []
    real = rebuilt = 0.0
    for a, b, secs, bpm in spans:
        x = PER_OCTAVE * math.log2(bpm / 120.0) + TEMPO_120
        b_ = tempo_bin(bpm)
        if b > a and abs(x - round(x)) < 1e-3:
            # A span already at a bin's tempo (up to whole-microsecond rounding) keeps that bin.
            real += secs
            rebuilt += (b - a) / GRID * 60.0 / tempo_of_bin(b_)
        elif b > a:
            quarters = (b - a) / GRID
            real += secs
            lo = min(max(int(math.floor(x)), 0), TEMPO_BINS - 1)
            hi = min(lo + 1, TEMPO_BINS - 1)
            with_lo = rebuilt + quarters * 60.0 / tempo_of_bin(lo)
            with_hi = rebuilt + quarters * 60.0 / tempo_of_bin(hi)
            b_ = lo if abs(with_lo - real) <= abs(with_hi - real) else hi
            rebuilt = with_lo if b_ == lo else with_hi
        if not out or out[-1][1] != b_:
            out.append([a, b_])
    return out


def tokenize(tpq, raw_notes, raw_tempos, raw_meters, pedal=(), end_tick=0):
    tpq = tpq if tpq > 0 else 480

    def to_step(tick):
        return (2 * GRID * tick + tpq) // (2 * tpq)

    meters = []
    for tick, n, d in raw_meters:
        if not representable(n, d):  # skipped, the meter before stays (counted by cadenza)
            continue
        m = [to_step(tick), n, d]
        if meters and meters[-1][0] == m[0]:
            meters.pop()
        meters.append(m)
    if not meters or meters[0][0] > 0:
        meters.insert(0, [0, 4, 4])

    # (inst, pitch, on, off, velocity); same onset/instrument/pitch keeps the longest, then the loudest; a held note is cut
    # at the next onset of its pitch.
    ends = sustained_ends(raw_notes, list(pedal), end_tick)
    grid = []
    for (start, _, pitch, vel, chan, prog, _), end in zip(raw_notes, ends):
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

    last_end = max([g[3] for g in kept], default=0)
    tempos = grid_tempos(raw_tempos, tpq, last_end)

    last_onset = kept[-1][2] if kept else 0
    sounding_end = max([g[2] + min(g[3] - g[2], MAX_DURATION) for g in kept], default=0)
    for step, _ in tempos:
        if step < sounding_end:
            last_onset = max(last_onset, step)
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
        tok.append(TIMESIG + DENOMINATORS.index(d) * MAX_NUMERATOR + n - 1)
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
        tpq, notes, tempos, meters, pedal, end_tick = mido_notes.read_score_with_pedal(os.path.join(root, rel))
        tok, bars, n = tokenize(tpq, notes, tempos, meters, pedal, end_tick)
    except Exception as e:  # a file that does not parse is skipped, as cadenza does
        return rel, None, 0, 0, str(e)
    digest = hashlib.sha256(struct.pack('<%di' % len(tok), *tok)).hexdigest()
    return rel, digest, n, len(tok), len(bars)


def midi_files(root):
    files = []
    for dirpath, _, names in os.walk(root):  # like cadenza: symlinked folders are not followed
        for name in names:
            if name.lower().endswith(('.mid', '.midi')):
                files.append(os.path.relpath(os.path.join(dirpath, name), root))
    files.sort()
    return files


def parse_in_memory(root, repeat):
    blobs = []
    for rel in midi_files(root):
        with open(os.path.join(root, rel), 'rb') as f:
            blobs.append(f.read())
    runs = []
    for _ in range(repeat):
        notes = skipped = 0
        t0 = time.perf_counter()
        for data in blobs:
            try:
                notes += len(mido_notes.read_score_from_bytes(data)[1])
            except Exception:  # refused, as cadenza refuses some malformed files
                skipped += 1
        runs.append(time.perf_counter() - t0)
    print(json.dumps({'files': len(blobs), 'notes': notes, 'skipped': skipped, 'seconds': min(runs), 'runs': runs}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('dir')
    ap.add_argument('--jobs', type=int, default=1)
    ap.add_argument('--digest')
    ap.add_argument('--parse', action='store_true', help='time mido parsing every file from memory, nothing else')
    ap.add_argument('--repeat', type=int, default=1, help='with --parse: best of N rounds')
    a = ap.parse_args()
    if a.parse:
        parse_in_memory(a.dir, a.repeat)
        return
    t0 = time.perf_counter()
    files = midi_files(a.dir)
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
