#!/usr/bin/env python3
"""The Python reference of window sampling: a PyTorch-style Dataset.__getitem__ over the shards with h5py.

Reads the schema of docs/storage.md directly (no cadenza code): windows of LENGTH tokens starting on bar lines
of train-split pieces (every bar with at least MIN_TOKENS tokens left in its piece), one h5py slice per window,
padded with PAD (0), in shuffled epochs as torch's RandomSampler would draw them (a fresh permutation of all
windows per epoch, the shuffle timed with the reads).

  /usr/bin/python3 bench/reference_windows.py DATASET --length 256 --count 50000 [--in-memory]
  /usr/bin/python3 bench/reference_windows.py DATASET --length 256 --check FILE

Default mode: open every shard once and slice `tokens` per window (what a Dataset over HDF5 usually does; every
slice goes through h5py and the gzip chunk cache). --in-memory: read each shard's `tokens` into a numpy array
once at start-up (cadenza's WindowSampler strategy) and slice numpy per window.

--check reads lines "shard index_in_shard start_token t0 t1 ..." written by bench/window_bench and prints how
many windows it reads identically (and how many windows the split has, to compare with cadenza's count).
Run it with /usr/bin/python3 (Debian's, with h5py and numpy).
"""
import argparse
import json
import os
import random
import sys
import time

import h5py
import numpy as np


class ShardWindows:
    def __init__(self, dataset, length, min_tokens=32, split='train', in_memory=False):
        manifest = json.load(open(os.path.join(dataset, 'manifest.json')))
        self.length = length
        self.files = [h5py.File(os.path.join(dataset, s['file']), 'r') for s in manifest['shards']]
        if in_memory:
            self.tokens = [f['tokens'][:] for f in self.files]
        else:
            self.tokens = [f['tokens'] for f in self.files]
        self.piece_offsets = [f['piece_token_offsets'][:] for f in self.files]
        self.windows = []  # (shard, absolute start token, end of piece)
        pieces = sorted((p['shard'], p['index_in_shard']) for p in manifest['pieces'] if p['split'] == split)
        bars = {}
        for shard, i in pieces:
            if shard not in bars:
                f = self.files[shard]
                bars[shard] = (f['bar_token_offsets'][:], f['piece_bar_offsets'][:])
            bar_offsets, piece_bars = bars[shard]
            t0, t1 = int(self.piece_offsets[shard][i]), int(self.piece_offsets[shard][i + 1])
            for b in bar_offsets[piece_bars[i]:piece_bars[i + 1]].tolist():
                if t1 - (t0 + b) >= min_tokens:
                    self.windows.append((shard, t0 + b, t1))

    def read(self, shard, start, end):
        out = np.zeros(self.length, dtype=np.int32)
        stop = min(end, start + self.length)
        out[:stop - start] = self.tokens[shard][start:stop]
        return out

    def __len__(self):
        return len(self.windows)

    def __getitem__(self, k):
        return self.read(*self.windows[k])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('dataset')
    ap.add_argument('--length', type=int, default=256)
    ap.add_argument('--count', type=int, default=50000)
    ap.add_argument('--in-memory', action='store_true')
    ap.add_argument('--check')
    a = ap.parse_args()
    t0 = time.perf_counter()
    ds = ShardWindows(a.dataset, a.length, in_memory=a.in_memory)
    open_seconds = time.perf_counter() - t0
    if a.check:
        same = total = 0
        for line in open(a.check):
            v = [int(x) for x in line.split()]
            shard, index, start, expected = v[0], v[1], v[2], v[3:]
            p0, p1 = int(ds.piece_offsets[shard][index]), int(ds.piece_offsets[shard][index + 1])
            total += 1
            same += ds.read(shard, p0 + start, p1).tolist() == expected
        print(json.dumps({'checked': total, 'identical': same, 'windows_total': len(ds)}))
        return 0
    if len(ds) == 0:
        print(json.dumps({'error': 'no windows in the train split'}))
        return 1
    rng = random.Random(1)
    checksum = done = epochs = 0
    t0 = time.perf_counter()
    while done < a.count:
        order = list(range(len(ds)))
        rng.shuffle(order)  # the epoch's permutation, as RandomSampler draws it
        epochs += 1
        for k in order[:a.count - done]:
            w = ds[k]
            checksum += int(w[0]) + int(w[-1])
        done += min(len(order), a.count - done)
    seconds = time.perf_counter() - t0
    print(json.dumps({'windows': done, 'seconds': seconds, 'open_seconds': open_seconds, 'epochs': epochs,
                      'windows_total': len(ds), 'checksum': checksum}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
