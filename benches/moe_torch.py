#!/usr/bin/env python3
"""PyTorch twin of `connito bench model`: the same MoE architecture and preset, timed the same
way, printing the same JSON keys, so both can be compared on one machine in one run.

    pip install torch            # from PyPI; not part of the test suite
    python3 benches/moe_torch.py --preset small --threads 2
    cargo run --release -- bench model --preset small --threads 2 --json

Architecture (as src/model): byte vocabulary, RMSNorm (eps 1e-5), rotary positions
(rotate-half, theta 10000), causal multi-head attention without biases, and in every layer an MoE
feed-forward whose router reads the token embedding, keeps the top-k softmax probabilities
(renormalized) and dispatches each token to those experts only (SwiGLU: gate, up, down), an
optional shared expert, a Switch-style load-balancing loss, an untied LM head. Training step:
group 0's experts only (every other tensor frozen), Adam(W) with betas (0.9, 0.99), eps 1e-8,
lr 3e-3, global-norm clipping at 1.0, aux-loss weight 0.01. Evaluation: forward + loss, no grad.
"""

import argparse
import json
import math
import sys
import time

import torch
import torch.nn.functional as F

PRESETS = {
    "tiny": dict(vocab=256, d_model=48, n_layers=2, n_heads=4, d_expert=64, n_experts=4,
                 n_groups=2, top_k=2, seq_len=32, rope_theta=10000, shared_expert=False),
    "small": dict(vocab=256, d_model=512, n_layers=6, n_heads=8, d_expert=512, n_experts=8,
                  n_groups=4, top_k=2, seq_len=256, rope_theta=10000, shared_expert=False),
}


def init_params(c, device):
    g = torch.Generator().manual_seed(1)
    d, h, v = c["d_model"], c["d_expert"], c["vocab"]

    def w(out, inp, scale=None):
        s = scale if scale is not None else 1.0 / math.sqrt(inp)
        return (torch.randn(out, inp, generator=g) * s).to(device)

    p = {"embed": w(v, d, 0.5), "norm": torch.ones(d, device=device),
         "lm_head": w(v, d, 4.0 / math.sqrt(d)), "layers": []}
    for _ in range(c["n_layers"]):
        layer = {
            "ln1": torch.ones(d, device=device), "ln2": torch.ones(d, device=device),
            "q": w(d, d), "k": w(d, d), "v": w(d, d), "o": w(d, d),
            "router": w(c["n_experts"], d),
            "experts": [{"gate": w(h, d), "up": w(h, d), "down": w(d, h)}
                        for _ in range(c["n_experts"])],
        }
        if c["shared_expert"]:
            layer["shared"] = {"gate": w(h, d), "up": w(h, d), "down": w(d, h)}
        p["layers"].append(layer)
    return p


def rms_norm(x, w):
    return x * torch.rsqrt(x.square().mean(-1, keepdim=True) + 1e-5) * w


def rope_tables(t, hd, theta, device):
    inv = theta ** (-torch.arange(0, hd // 2, dtype=torch.float64) * 2.0 / hd)
    ang = torch.arange(t, dtype=torch.float64)[:, None] * inv[None, :]
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos().float().to(device), ang.sin().float().to(device)


def apply_rope(x, cos, sin):
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rot * sin


def swiglu(x, e):
    return F.linear(F.silu(F.linear(x, e["gate"])) * F.linear(x, e["up"]), e["down"])


def moe(c, layer, x, route):
    probs = F.softmax(F.linear(route, layer["router"]), dim=-1)
    top_p, top_i = probs.topk(c["top_k"], dim=-1)
    top_p = top_p / (top_p.sum(-1, keepdim=True) + 1e-9)
    out = swiglu(x, layer["shared"]) if "shared" in layer else torch.zeros_like(x)
    slots = torch.zeros(c["n_experts"], device=x.device)
    for e in range(c["n_experts"]):
        rows, which = (top_i == e).nonzero(as_tuple=True)
        slots[e] = rows.numel()
        if rows.numel() == 0:
            continue
        y = swiglu(x[rows], layer["experts"][e]) * top_p[rows, which][:, None]
        out = out.index_add(0, rows, y)
    frac = slots / slots.sum().clamp(min=1)
    aux = c["n_experts"] * (probs.mean(0) * frac).sum()
    return out, aux


def forward(c, p, tokens, rope):
    b, t = tokens.shape
    d, nh = c["d_model"], c["n_heads"]
    hd = d // nh
    cos, sin = rope
    tok = p["embed"][tokens.reshape(-1)]
    x = tok
    aux = 0.0
    for layer in p["layers"]:
        n1 = rms_norm(x, layer["ln1"])

        def heads(w):
            return F.linear(n1, w).view(b, t, nh, hd).transpose(1, 2)

        q = apply_rope(heads(layer["q"]), cos, sin)
        k = apply_rope(heads(layer["k"]), cos, sin)
        att = F.scaled_dot_product_attention(q, k, heads(layer["v"]), is_causal=True)
        x = x + F.linear(att.transpose(1, 2).reshape(b * t, d), layer["o"])
        y, a = moe(c, layer, rms_norm(x, layer["ln2"]), tok)
        x = x + y
        aux = aux + a
    return F.linear(rms_norm(x, p["norm"]), p["lm_head"]), aux / c["n_layers"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="small", choices=sorted(PRESETS))
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--batch-rows", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    c = PRESETS[a.preset]
    dev = torch.device(a.device)
    p = init_params(c, dev)
    n_params = sum(t.numel() for t in [p["embed"], p["norm"], p["lm_head"]])
    for layer in p["layers"]:
        for k, v in layer.items():
            if k == "experts":
                n_params += sum(t.numel() for e in v for t in e.values())
            elif k == "shared":
                n_params += sum(t.numel() for t in v.values())
            else:
                n_params += v.numel()
    per = c["n_experts"] // c["n_groups"]
    trainable = []
    for layer in p["layers"]:
        for e in layer["experts"][:per]:  # group 0
            for k in e:
                e[k].requires_grad_(True)
                trainable.append(e[k])
    opt = torch.optim.AdamW(trainable, lr=3e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.0)
    t_len = c["seq_len"]
    rope = rope_tables(t_len, c["d_model"] // c["n_heads"], c["rope_theta"], dev)
    g = torch.Generator().manual_seed(2)
    batches = [torch.randint(32, 127, (a.batch_rows, t_len + 1), generator=g).to(dev)
               for _ in range(a.steps + 1)]
    tokens = a.batch_rows * t_len

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def train_step(batch):
        logits, aux = forward(c, p, batch[:, :-1], rope)
        loss = F.cross_entropy(logits, batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        (loss + 0.01 * aux).backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        return loss.item()

    print(f"torch {torch.__version__}: {a.preset} ({n_params} parameters) on {a.device}, "
          f"{a.threads} threads, {tokens} tokens per step; warming up", file=sys.stderr)
    train_step(batches[0])
    sync()
    t0 = time.perf_counter()
    for i, b in enumerate(batches[1:]):
        loss = train_step(b)
        print(f"torch: train step {i + 1}/{a.steps} loss {loss:.3f}", file=sys.stderr)
    sync()
    train_tps = a.steps * tokens / (time.perf_counter() - t0)

    with torch.no_grad():
        def eval_loss(batch):
            logits, _ = forward(c, p, batch[:, :-1], rope)
            return F.cross_entropy(logits, batch[:, 1:].reshape(-1)).item()
        eval_loss(batches[0])
        sync()
        t0 = time.perf_counter()
        for b in batches[1:]:
            eval_loss(b)
        sync()
        eval_tps = a.steps * tokens / (time.perf_counter() - t0)

    print(json.dumps({"preset": a.preset, "backend": f"torch-{a.device}", "threads": a.threads,
                      "train_tokens_per_s": train_tps, "eval_tokens_per_s": eval_tps,
                      "params": n_params}))


if __name__ == "__main__":
    main()
