#!/usr/bin/python3
"""PyTorch reference for bench/model_bench.cc: the two cadenza model families, module for module.

Run with Debian's Python (python3-torch): /usr/bin/python3 bench/reference_models.py --job ... --config '{json}'.
model_bench spawns it once per measurement (a fresh process each, so peak memory does not mix) with the same
thread count and environment as its own child (OMP_WAIT_POLICY=passive, glibc malloc tuned through
GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184, the equivalent of the
mallopt() calls at the top of model_bench's main). Every job prints one JSON line on stdout.

The modules mirror core/model/transformer.cc and core/model/attention_rnn.cc op for op and have the same
state_dict names, so a state dict exported by the C++ model loads here with strict=True (the `check` job does
that and compares logits). The training step mirrors core/model/trainer.cc: AdamW with the same parameter
groups and hyperparameters, cross-entropy with ignore_index 0 (PAD), global grad-norm clip 1.0, loss.item().
Generation steps one sequence (KV cache / RNN state) through nn.Linear and nn.LSTM/GRU as written; --gemv switches
on the batch-1 path of the C++ models (addmv for single rows, written-out RNN cells) to separate that
implementation choice from the language and runtime difference. --naive-additive replaces the blocked additive
attention by the textbook form that materialises [B, T, T, A], to show the memory it would take.
"""

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

NEG_INF = float("-inf")


def sinusoids(max_len, d):
    pos = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(0, d, 2, dtype=torch.float64)
    freq = torch.exp(-math.log(10000.0) * i / float(d))
    pe = torch.zeros(max_len, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : d // 2]
    return pe.to(torch.float32)


# --gemv: the batch-1 step path of cadenza's C++ models (core/model/*.cc RowAffine), for comparison only. A [1, K]
# row times a weight matrix goes to addmv instead of a [1, K] x [K, N] GEMM (which OpenBLAS 0.3.21 runs by packing
# the whole matrix every call), and the LSTM/GRU cells are written out so their matrix products can do the same;
# generation then runs on one thread, as the C++ Step does for one sequence.
ROW_GEMV = False


def one_row(x):
    return ROW_GEMV and x.numel() > 0 and x.numel() == x.size(-1)


def row_affine(x, weight, bias=None):
    row = x.reshape(-1)
    y = torch.addmv(bias, weight, row) if bias is not None else torch.mv(weight, row)
    return y.view(*x.shape[:-1], weight.size(0))


def affine(layer, x):
    return row_affine(x, layer.weight, layer.bias) if one_row(x) else layer(x)


def init_embedding(embedding, d_model):
    with torch.no_grad():
        embedding.weight.normal_(0.0, 1.0 / math.sqrt(d_model))


# ----------------------------------------------------------------------------------------------- Transformer
class TransformerBlock(nn.Module):
    def __init__(self, d_model, heads, ff_dim, dropout):
        super().__init__()
        self.heads, self.head_dim = heads, d_model // heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.ff1 = nn.Linear(d_model, ff_dim)
        self.ff2 = nn.Linear(ff_dim, d_model)
        self.dropout = nn.Dropout(dropout)

    def feed_forward(self, x):
        return self.dropout(affine(self.ff2, torch.relu(affine(self.ff1, self.ln2(x)))))

    def forward(self, x, mask):
        B, T, D = x.shape
        qkv = self.qkv(self.ln1(x)).view(B, T, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q = qkv[0].reshape(B * self.heads, T, self.head_dim)
        k = qkv[1].reshape(B * self.heads, T, self.head_dim)
        v = qkv[2].reshape(B * self.heads, T, self.head_dim)
        scores = torch.baddbmm(mask, q, k.transpose(1, 2), beta=1.0, alpha=1.0 / math.sqrt(self.head_dim))
        attn = self.dropout(torch.softmax(scores, -1))
        out = torch.bmm(attn, v).view(B, self.heads, T, self.head_dim).transpose(1, 2).reshape(B, T, D)
        h = x + self.dropout(self.proj(out))
        return h + self.feed_forward(h)

    def step(self, x, k_cache, v_cache, position):
        B, _, D = x.shape
        qkv = affine(self.qkv, self.ln1(x)).view(B, 3, self.heads, self.head_dim)
        q = qkv.select(1, 0).unsqueeze(2)
        k_cache.select(2, position).copy_(qkv.select(1, 1))
        v_cache.select(2, position).copy_(qkv.select(1, 2))
        keys = k_cache.narrow(2, 0, position + 1)
        values = v_cache.narrow(2, 0, position + 1)
        scores = torch.matmul(q, keys.transpose(2, 3)) / math.sqrt(self.head_dim)
        out = torch.matmul(torch.softmax(scores, -1), values).view(B, 1, D)
        h = x + affine(self.proj, out)
        return h + self.feed_forward(h)


class TransformerModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_scale = math.sqrt(c["d_model"])
        self.embedding = nn.Embedding(c["vocab_size"], c["d_model"])
        init_embedding(self.embedding, c["d_model"])
        self.register_buffer("positions", sinusoids(c["max_len"], c["d_model"]))
        self.blocks = nn.ModuleList(
            [TransformerBlock(c["d_model"], c["heads"], c["ff_dim"], c["dropout"]) for _ in range(c["layers"])])
        self.ln_final = nn.LayerNorm(c["d_model"])
        self.output = None if c["tie_embeddings"] else nn.Linear(c["d_model"], c["vocab_size"], bias=False)
        self.dropout = nn.Dropout(c["dropout"])

    def logits(self, hidden):
        h = self.ln_final(hidden)
        if one_row(h):
            return row_affine(h, self.embedding.weight if self.output is None else self.output.weight)
        return torch.matmul(h, self.embedding.weight.t()) if self.output is None else self.output(h)

    def forward(self, tokens):
        T = tokens.size(1)
        x = self.dropout(self.embedding(tokens) * self.embed_scale + self.positions.narrow(0, 0, T))
        mask = torch.full((T, T), NEG_INF).triu(1)
        for block in self.blocks:
            x = block(x, mask)
        return self.logits(x)

    def new_state(self, batch, max_len):
        heads, head_dim = self.c["heads"], self.c["d_model"] // self.c["heads"]
        shape = (batch, heads, max_len, head_dim)
        return {"position": 0, "keys": [torch.zeros(shape) for _ in self.blocks],
                "values": [torch.zeros(shape) for _ in self.blocks]}

    def step(self, tokens, state):
        p = state["position"]
        x = (self.embedding(tokens) * self.embed_scale + self.positions[p]).unsqueeze(1)
        for i, block in enumerate(self.blocks):
            x = block.step(x, state["keys"][i], state["values"][i], p)
        state["position"] = p + 1
        return self.logits(x).squeeze(1)


# ------------------------------------------------------------------------------------ additive attention
def rows_per_block(B, T, A):
    budget = max(B * T * T, 1 << 22)
    return min(max(budget // max(1, B * T * A), 1), T)


def block_mask(i0, i1, j0, j1, window):
    i = torch.arange(i0, i1).unsqueeze(1)
    j = torch.arange(j0, j1).unsqueeze(0)
    valid = j <= i
    if window > 0:
        valid = valid & (j > i - window)
    return valid


def first_key(i0, window):
    return max(0, i0 - window + 1) if window > 0 else 0


class AdditiveScores(torch.autograd.Function):
    """core/model/additive_attention.cc: blocks of query rows, backward recomputes tanh."""

    @staticmethod
    def forward(ctx, q, k, v, window):
        ctx.save_for_backward(q, k, v)
        ctx.window = window
        B, T, A = q.shape
        scores = torch.full((B, T, T), NEG_INF, dtype=q.dtype)
        rows = rows_per_block(B, T, A)
        for i0 in range(0, T, rows):
            i1 = min(T, i0 + rows)
            j0, j1 = first_key(i0, window), i1
            a = torch.tanh(q[:, i0:i1].unsqueeze(2) + k[:, j0:j1].unsqueeze(1))
            s = torch.matmul(a, v)
            s.masked_fill_(block_mask(i0, i1, j0, j1, window).logical_not(), NEG_INF)
            scores[:, i0:i1, j0:j1] = s
        return scores

    @staticmethod
    def backward(ctx, grad):
        q, k, v = ctx.saved_tensors
        window = ctx.window
        B, T, A = q.shape
        dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
        rows = rows_per_block(B, T, A)
        for i0 in range(0, T, rows):
            i1 = min(T, i0 + rows)
            j0, j1 = first_key(i0, window), i1
            a = torch.tanh(q[:, i0:i1].unsqueeze(2) + k[:, j0:j1].unsqueeze(1))
            g = grad[:, i0:i1, j0:j1] * block_mask(i0, i1, j0, j1, window)
            dv += torch.matmul(g.reshape(1, -1), a.reshape(-1, A)).squeeze(0)
            pre = g.unsqueeze(-1) * v * (1 - a * a)
            dq[:, i0:i1] += pre.sum(2)
            dk[:, j0:j1] += pre.sum(1)
        return dq, dk, dv, None


def additive_scores_naive(q, k, v, window):
    """The textbook form: materialises [B, T, T, A] (and autograd keeps the tanh output for backward)."""
    T = q.size(1)
    s = torch.matmul(torch.tanh(q.unsqueeze(2) + k.unsqueeze(1)), v)
    return s.masked_fill(block_mask(0, T, 0, T, window).logical_not(), NEG_INF)


# ----------------------------------------------------------------------------------------- attention RNN
class AttentionRnnModel(nn.Module):
    def __init__(self, c, naive_additive=False):
        super().__init__()
        self.c = c
        self.lstm = c["family"] == "lstm"
        self.naive_additive = naive_additive
        H = c["hidden"]
        self.embedding = nn.Embedding(c["vocab_size"], c["d_model"])
        init_embedding(self.embedding, c["d_model"])
        between = c["dropout"] if c["layers"] > 1 else 0.0
        rnn = nn.LSTM if self.lstm else nn.GRU
        self.rnn = rnn(c["d_model"], H, num_layers=c["layers"], dropout=between)  # time-major, as in LibTorch
        if c["attention"] == "general":
            self.attn_general = nn.Linear(H, H, bias=False)
        elif c["attention"] == "additive":
            self.attn_query = nn.Linear(H, H)
            self.attn_key = nn.Linear(H, H, bias=False)
            self.attn_v = nn.Parameter(torch.randn(H) / math.sqrt(H))
        self.combine = nn.Linear(2 * H, c["d_model"])
        self.output = None if c["tie_embeddings"] else nn.Linear(c["d_model"], c["vocab_size"], bias=False)
        self.dropout = nn.Dropout(c["dropout"])

    def scores(self, hs):
        T = hs.size(1)
        window = self.c["attention_window"]
        if self.c["attention"] == "additive":
            fn = additive_scores_naive if self.naive_additive else AdditiveScores.apply
            return fn(self.attn_query(hs), self.attn_key(hs), self.attn_v, window)
        scale = 1.0 / math.sqrt(self.c["hidden"])
        query = self.attn_general(hs) if self.c["attention"] == "general" else hs
        mask = torch.full((T, T), NEG_INF).triu(1)
        if window > 0:
            mask = mask + torch.full((T, T), NEG_INF).tril(-window)
        return torch.baddbmm(mask, query, hs.transpose(1, 2), beta=1.0, alpha=scale)

    def out(self, context, hs):
        o = self.dropout(torch.tanh(affine(self.combine, torch.cat([context, hs], -1))))
        if one_row(o):
            return row_affine(o, self.embedding.weight if self.output is None else self.output.weight)
        return torch.matmul(o, self.embedding.weight.t()) if self.output is None else self.output(o)

    def forward(self, tokens):
        x = self.dropout(self.embedding(tokens)).transpose(0, 1)
        hs = self.rnn(x)[0].transpose(0, 1).contiguous()
        attn = torch.softmax(self.scores(hs), -1)
        context = torch.bmm(attn, hs)
        return self.out(context, hs)

    def new_state(self, batch, max_len):
        L, H = self.c["layers"], self.c["hidden"]
        rows = self.c["attention_window"] if self.c["attention_window"] > 0 else max(max_len, 1)
        s = {"position": 0, "filled": 0, "h": torch.zeros(L, batch, H),
             "c": torch.zeros(L, batch, H) if self.lstm else None,
             "history": torch.zeros(batch, rows, H),
             "key_history": torch.zeros(batch, rows, H) if self.c["attention"] == "additive" else None}
        return s

    def step(self, tokens, s):
        if ROW_GEMV and not self.training and tokens.numel() == 1:
            h_t = self.cells_step(self.embedding(tokens), s)
        else:
            x = self.embedding(tokens).unsqueeze(0)
            if self.lstm:
                y, (s["h"], s["c"]) = self.rnn(x, (s["h"], s["c"]))
            else:
                y, s["h"] = self.rnn(x, s["h"])
            h_t = y.squeeze(0)
        rows = s["history"].size(1)
        if s["filled"] == rows:
            assert self.c["attention_window"] > 0, "RNN history is full"
            s["history"] = torch.roll(s["history"], -1, 1)
            if s["key_history"] is not None:
                s["key_history"] = torch.roll(s["key_history"], -1, 1)
            s["filled"] -= 1
        s["history"].select(1, s["filled"]).copy_(h_t)
        if s["key_history"] is not None:
            s["key_history"].select(1, s["filled"]).copy_(affine(self.attn_key, h_t))
        s["filled"] += 1
        past = s["history"].narrow(1, 0, s["filled"])
        if self.c["attention"] == "additive":
            scores = torch.matmul(torch.tanh(affine(self.attn_query, h_t).unsqueeze(1) + s["key_history"].narrow(1, 0, s["filled"])),
                                  self.attn_v)
        else:
            query = affine(self.attn_general, h_t) if self.c["attention"] == "general" else h_t
            scores = torch.bmm(past, query.unsqueeze(2)).squeeze(2) / math.sqrt(self.c["hidden"])
        context = torch.bmm(torch.softmax(scores, -1).unsqueeze(1), past).squeeze(1)
        s["position"] += 1
        return self.out(context, h_t)


    def cells_step(self, inp, s):
        """--gemv only: the LSTM/GRU cells written out as in core/model/attention_rnn.cc (eval mode, one row)."""
        hs, cs = [], []
        for l in range(self.c["layers"]):
            gi = row_affine(inp, getattr(self.rnn, f"weight_ih_l{l}"), getattr(self.rnn, f"bias_ih_l{l}"))
            gh = row_affine(s["h"][l], getattr(self.rnn, f"weight_hh_l{l}"), getattr(self.rnn, f"bias_hh_l{l}"))
            if self.lstm:
                i, f, g, o = (gh + gi).chunk(4, 1)
                c = torch.sigmoid(f) * s["c"][l] + torch.sigmoid(i) * torch.tanh(g)
                inp = torch.sigmoid(o) * torch.tanh(c)
                cs.append(c)
            else:
                i, h = gi.chunk(3, 1), gh.chunk(3, 1)
                reset, update = torch.sigmoid(h[0] + i[0]), torch.sigmoid(h[1] + i[1])
                fresh = torch.tanh(i[2] + h[2] * reset)
                inp = (s["h"][l] - fresh) * update + fresh
            hs.append(inp)
        s["h"] = torch.stack(hs)
        if self.lstm:
            s["c"] = torch.stack(cs)
        return inp


def make_model(c, naive_additive=False):
    return TransformerModel(c) if c["family"] == "transformer" else AttentionRnnModel(c, naive_additive)


# --------------------------------------------------------------------------------------------- measuring
def proc_status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def param_groups(model, weight_decay):
    """core/model/trainer.cc ParamGroups: decay on weight matrices except the (tied) embedding."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() >= 2 and "embedding" not in name else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def random_batch(B, T, V, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, V, (B, T + 1), generator=g, dtype=torch.int64)


def job_train(c, a):
    torch.manual_seed(1)
    model = make_model(c, a.naive_additive)
    model.train()
    opt = torch.optim.AdamW(param_groups(model, 0.01), lr=3e-4, betas=(0.9, 0.98), eps=1e-8)
    batch = random_batch(a.batch, a.seq, c["vocab_size"], 7)
    inputs, targets = batch[:, :-1], batch[:, 1:]
    rss_before = proc_status_kb("VmRSS")
    hwm_before = proc_status_kb("VmHWM")
    times, loss_value = [], 0.0
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        # --precision bf16: CPU autocast as PyTorch documents it (its lower-precision op list runs in bf16: linear,
        # matmul, bmm, baddbmm, ...), fp32 master weights and optimizer; the loss on fp32 logits.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            logits = model(inputs)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=0)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss_value = loss.item()
        dt = time.perf_counter() - t0
        if i >= a.warmup:
            times.append(dt)
    med = statistics.median(times)
    return {"params": sum(p.numel() for p in model.parameters()), "step_s": med, "step_times": times,
            "tokens_per_s": a.batch * a.seq / med, "loss": loss_value, "precision": a.precision,
            "rss_before_kb": rss_before, "hwm_before_kb": hwm_before, "hwm_after_kb": proc_status_kb("VmHWM"),
            "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def job_generate(c, a):
    torch.manual_seed(1)
    model = make_model(c)
    model.eval()
    V = c["vocab_size"]
    gen = torch.Generator().manual_seed(3)
    runs = []
    with torch.no_grad():
        for r in range(a.warmup + a.steps):
            n = 32 if r < a.warmup else a.tokens
            state = model.new_state(1, a.tokens)
            token = torch.tensor([1], dtype=torch.int64)  # BOS
            lat = []
            t0 = time.perf_counter()
            for _ in range(n):
                s = time.perf_counter()
                logits = model.step(token, state)
                token = torch.multinomial(torch.softmax(logits, -1), 1, False, generator=gen).squeeze(-1)
                lat.append(time.perf_counter() - s)
            total = time.perf_counter() - t0
            if r >= a.warmup:
                runs.append({"total_s": total, "median_ms": 1e3 * statistics.median(lat),
                             "p90_ms": 1e3 * sorted(lat)[int(0.9 * len(lat))]})
    best = sorted(runs, key=lambda x: x["total_s"])[len(runs) // 2]  # the median run
    return {"params": sum(p.numel() for p in model.parameters()), "tokens": a.tokens,
            "tokens_per_s": a.tokens / best["total_s"], "ms_per_token": 1e3 * best["total_s"] / a.tokens,
            "median_ms": best["median_ms"], "p90_ms": best["p90_ms"], "runs": [r["total_s"] for r in runs]}


def job_matmul(c, a):
    n = 2048
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    times = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        torch.mm(x, y)
        dt = time.perf_counter() - t0
        if i >= a.warmup:
            times.append(dt)
    med = statistics.median(times)
    return {"n": n, "s": med, "gflops": 2.0 * n ** 3 / med / 1e9}


def job_params(c, a):
    model = make_model(c)
    return {"params": sum(p.numel() for p in model.parameters())}


def job_check(c, a):
    """Loads the C++ model's exported state dict (strict) and compares logits on the same tokens."""
    model = make_model(c)
    sd = torch.load(a.state_dict)
    model.load_state_dict(sd, strict=True)
    model.eval()
    ref = torch.load(a.reference)
    tokens, cpp_logits = ref["tokens"], ref["logits"]
    with torch.no_grad():
        logits = model(tokens)
        # This implementation's own batch-1 generation loop must agree with its forward (step == forward).
        state = model.new_state(1, tokens.size(1))
        steps = torch.stack([model.step(tokens[:1, t], state) for t in range(tokens.size(1))], 1)
    return {"params": sum(p.numel() for p in model.parameters()),
            "max_abs_diff": (logits - cpp_logits).abs().max().item(),
            "step_vs_forward": (steps - logits[:1]).abs().max().item(),
            "logit_scale": cpp_logits.abs().max().item()}


JOBS = {"train": job_train, "generate": job_generate, "matmul": job_matmul, "params": job_params, "check": job_check}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--job", choices=sorted(JOBS), required=True)
    p.add_argument("--config", default="{}", help="model config as JSON (the fields of cadenza::ModelConfig)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--tokens", type=int, default=512)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--naive-additive", action="store_true", help="additive attention materialising [B,T,T,A]")
    p.add_argument("--gemv", action="store_true", help="the C++ models' batch-1 addmv step path (comparison only)")
    p.add_argument("--state-dict", default="")
    p.add_argument("--reference", default="")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="train: bf16 CPU autocast")
    a = p.parse_args()
    # --gemv also takes the C++ batch-1 thread choice: generation runs its matrix-vector products on one thread
    # (core/model/row_affine.h OneThreadForOneRow).
    torch.set_num_threads(1 if a.gemv and a.job == "generate" else a.threads)
    global ROW_GEMV
    ROW_GEMV = a.gemv
    c = json.loads(a.config)
    result = JOBS[a.job](c, a)
    result.update({"impl": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
                   "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
                   "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""), "gemv": ROW_GEMV})
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
