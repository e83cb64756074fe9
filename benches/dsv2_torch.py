#!/usr/bin/env python3
"""PyTorch twin of `connito bench model`: the same DeepSeek-V2 model (Hugging Face
transformers' DeepseekV2ForCausalLM, loaded from the directory connito writes), the same group's
partial model, the same batch and threads, timed the same way, printing the same JSON keys.

    pip install torch transformers safetensors       # from PyPI; not part of the test suite
    cargo run -- model init --preset small --hf --out /tmp/small
    python3 benches/dsv2_torch.py --model /tmp/small --groups 4 --threads 2
    cargo run -- bench model --preset small --threads 2 --json

Partial model (SN102's `partial_topk`, as connito's `ModelConfig::routing`): the router's
softmax runs over all experts, every expert outside group 0 is masked to -1e4, the top-1 expert
is chosen and its weight is its probability times routed_scaling_factor. Training step: only the
routed experts train (the stacked `gate_up_proj` / `down_proj` tensors; outside group 0 their
gradient is zero), cross-entropy only, AdamW betas (0.9, 0.99), eps 1e-8, lr 3e-3, no weight
decay, global-norm clipping at 1.0. Evaluation: forward + loss, no grad. Rows hold
`seq_len + 1` tokens; a step's tokens are `rows * seq_len` predictions.
"""

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F
from transformers import DeepseekV2ForCausalLM
from transformers.models.deepseek_v2 import modeling_deepseek_v2 as ds


def partial_router(allowed, k):
    """A router forward that routes only to `allowed` experts, `k` per token (SN102's)."""

    def forward(self, hidden_states):
        hidden_states = hidden_states.view(-1, self.hidden_dim)
        logits = F.linear(hidden_states.type(torch.float32), self.weight.type(torch.float32))
        scores = logits.softmax(dim=-1, dtype=torch.float32)
        scores = scores.masked_fill(~allowed, -1e4)
        weights, idx = torch.topk(scores, k=k, dim=-1, sorted=False)
        return logits, weights * self.routed_scaling_factor, idx

    return forward


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="a directory from `connito model init --hf`")
    ap.add_argument("--groups", type=int, default=4, help="expert groups (small: 4)")
    ap.add_argument("--seq-len", type=int, default=256, help="predictions per row (small: 256)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--batch-rows", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    model = DeepseekV2ForCausalLM.from_pretrained(a.model, dtype=torch.float32).to(dev)
    cfg = model.config
    n = cfg.n_routed_experts
    per = n // a.groups
    allowed = torch.zeros(n, dtype=torch.bool, device=dev)
    allowed[:per] = True
    ds.DeepseekV2TopkRouter.forward = partial_router(allowed, 1)
    n_params = sum(p.numel() for p in model.parameters())
    trainable = []
    for name, p in model.named_parameters():
        train = ".mlp.experts." in name
        p.requires_grad_(train)
        if train:
            trainable.append(p)
    opt = torch.optim.AdamW(trainable, lr=3e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.0)
    g = torch.Generator().manual_seed(2)
    batches = [torch.randint(32, 127, (a.batch_rows, a.seq_len + 1), generator=g).to(dev)
               for _ in range(a.steps + 1)]
    tokens = a.batch_rows * a.seq_len

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def loss_of(batch):
        logits = model(input_ids=batch).logits[:, :-1].float()
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))

    def train_step(batch):
        loss = loss_of(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        return loss.item()

    print(f"torch {torch.__version__}: {a.model} ({n_params} parameters) on {a.device}, "
          f"{a.threads} threads, {tokens} tokens per step; warming up", file=sys.stderr)
    model.train()
    train_step(batches[0])
    sync()
    t0 = time.perf_counter()
    for i, b in enumerate(batches[1:]):
        loss = train_step(b)
        print(f"torch: train step {i + 1}/{a.steps} loss {loss:.3f}", file=sys.stderr)
    sync()
    train_tps = a.steps * tokens / (time.perf_counter() - t0)

    model.eval()
    with torch.no_grad():
        loss_of(batches[0]).item()
        sync()
        t0 = time.perf_counter()
        for b in batches[1:]:
            loss_of(b).item()
        sync()
        eval_tps = a.steps * tokens / (time.perf_counter() - t0)

    print(json.dumps({"preset": a.model, "weight_dtype": "f32", "backend": f"torch-{a.device}",
                      "threads": a.threads,
                      "train_tokens_per_s": train_tps, "eval_tokens_per_s": eval_tps,
                      "params": n_params}))


if __name__ == "__main__":
    main()
