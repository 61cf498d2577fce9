#!/usr/bin/env python3
"""The Python reference of window sampling: a PyTorch-style Dataset.__getitem__ over the shards with h5py.

Reads the schema of docs/storage.md directly (no cadenza code): windows of LENGTH tokens starting on bar lines
of train-split pieces, drawn at random, one h5py slice per window, padded with PAD (0).

  /usr/bin/python3 bench/reference_windows.py DATASET --length 256 --count 20000
  /usr/bin/python3 bench/reference_windows.py DATASET --length 256 --check FILE

--check reads lines "shard index_in_shard start_token t0 t1 ..." written by bench/window_bench and prints how
many windows it reads identically.
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
    def __init__(self, dataset, length, min_tokens=32, split='train'):
        manifest = json.load(open(os.path.join(dataset, 'manifest.json')))
        self.length = length
        self.files = [h5py.File(os.path.join(dataset, s['file']), 'r') for s in manifest['shards']]
        self.tokens = [f['tokens'] for f in self.files]
        self.piece_offsets = [f['piece_token_offsets'][:] for f in self.files]
        self.windows = []  # (shard, absolute start token, end of piece)
        for shard, f in enumerate(self.files):
            bars, pbar = f['bar_token_offsets'][:], f['piece_bar_offsets'][:]
            for p in manifest['pieces']:
                if p['shard'] != shard or p['split'] != split:
                    continue
                i = p['index_in_shard']
                t0, t1 = self.piece_offsets[shard][i], self.piece_offsets[shard][i + 1]
                for b in bars[pbar[i]:pbar[i + 1]]:
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
    ap.add_argument('--count', type=int, default=20000)
    ap.add_argument('--check')
    a = ap.parse_args()
    t0 = time.perf_counter()
    ds = ShardWindows(a.dataset, a.length)
    open_seconds = time.perf_counter() - t0
    if a.check:
        same = total = 0
        for line in open(a.check):
            v = [int(x) for x in line.split()]
            shard, index, start, expected = v[0], v[1], v[2], v[3:]
            p0, p1 = ds.piece_offsets[shard][index], ds.piece_offsets[shard][index + 1]
            total += 1
            same += ds.read(shard, p0 + start, p1).tolist() == expected
        print(json.dumps({'checked': total, 'identical': same}))
        return
    rng = random.Random(1)
    order = [rng.randrange(len(ds)) for _ in range(a.count)]
    checksum = 0
    t0 = time.perf_counter()
    for k in order:
        checksum += int(ds[k][0])
    seconds = time.perf_counter() - t0
    print(json.dumps({'windows': a.count, 'seconds': seconds, 'open_seconds': open_seconds,
                      'windows_total': len(ds), 'checksum': checksum}))


if __name__ == '__main__':
    sys.exit(main())
