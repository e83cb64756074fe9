#!/usr/bin/env python3
"""Makes the DeepSeek-V2 agreement fixtures in tests/fixtures/dsv2/ with Hugging Face transformers.

Each fixture is a random tiny DeepseekV2ForCausalLM (`save_pretrained`: config.json and
safetensors) and `expected.json`: the input ids of a fixed batch, the logits, the mean
next-token cross-entropy (labels = inputs, no auxiliary loss) and the gradient of that loss
with respect to one routed expert's gate_proj. tests/it/dsv2_fixtures.rs loads each and must agree
within 1e-4 (logits, loss) and 1e-3 (gradient). CI needs no Python: the fixtures are committed.

    python3 -m venv /tmp/dsvenv && /tmp/dsvenv/bin/pip install torch transformers safetensors
    /tmp/dsvenv/bin/python scripts/dsv2_fixtures.py [--out tests/fixtures/dsv2]

Reference numerics are transformers >= 5.16 (its YaRN softmax scale includes DeepSeek's
mscale_all_dim factor, as DeepSeek's published code does). Every fixture keeps
norm_topk_prob = false and moe_layer_freq = 1, where transformers and DeepSeek's code agree.
"""

import argparse
import json
import os
import shutil

import torch
import transformers
from transformers import DeepseekV2Config, DeepseekV2ForCausalLM

BASE = dict(
    vocab_size=64,
    hidden_size=32,
    intermediate_size=48,
    moe_intermediate_size=16,
    num_hidden_layers=3,
    num_attention_heads=2,
    num_key_value_heads=2,
    n_shared_experts=1,
    n_routed_experts=4,
    num_experts_per_tok=2,
    kv_lora_rank=16,
    q_lora_rank=None,
    qk_rope_head_dim=4,
    qk_nope_head_dim=8,
    v_head_dim=8,
    first_k_dense_replace=1,
    max_position_embeddings=64,
    rms_norm_eps=1e-6,
)

YARN = {
    "rope_type": "yarn",
    "rope_theta": 10000.0,
    "factor": 4.0,
    "original_max_position_embeddings": 16,
    "beta_fast": 32.0,
    "beta_slow": 1.0,
    "mscale": 1.0,
    "mscale_all_dim": 0.8,
}

# name -> (config overrides, save dtype, max shard size or None, legacy rope_scaling config.json)
FIXTURES = {
    "plain": ({}, torch.float32, None, False),
    "q_lora": ({"q_lora_rank": 12, "routed_scaling_factor": 2.5, "n_shared_experts": 2}, torch.float32, None, False),
    "grouped": (
        {"n_routed_experts": 8, "topk_method": "group_limited_greedy", "n_group": 4, "topk_group": 2, "num_experts_per_tok": 3},
        torch.float32,
        None,
        False,
    ),
    "yarn": ({"rope_parameters": YARN, "max_position_embeddings": 64}, torch.float32, None, False),
    "yarn_legacy_bf16_sharded": (
        {"rope_parameters": YARN, "first_k_dense_replace": 2, "tie_word_embeddings": False},
        torch.bfloat16,
        "40KB",
        True,
    ),
}

GRAD_OF = "model.layers.{l}.mlp.experts.1.gate_proj.weight"


def expert_grad(model, layer, expert, im):
    """The gradient of one routed expert's gate_proj, whichever way transformers holds experts."""
    experts = model.model.layers[layer].mlp.experts
    if hasattr(experts, "gate_up_proj"):  # fused [E, 2*Im, H], gate rows first
        return experts.gate_up_proj.grad[expert, :im, :]
    return experts[expert].gate_proj.weight.grad


def legacy_config(path):
    """Rewrites config.json as DeepSeek-V2-Lite publishes it: rope_theta and rope_scaling."""
    with open(path) as f:
        cfg = json.load(f)
    rope = cfg.pop("rope_parameters")
    cfg["rope_theta"] = rope.pop("rope_theta")
    rope["type"] = rope.pop("rope_type")
    cfg["rope_scaling"] = rope
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)


def make(out, name, overrides, dtype, shard, legacy, seed):
    torch.manual_seed(seed)
    kwargs = dict(BASE)
    kwargs.update(overrides)
    cfg = DeepseekV2Config(**kwargs)
    cfg._attn_implementation = "eager"
    model = DeepseekV2ForCausalLM(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
            # Round to the saved dtype, so the f32 reference sees exactly the stored values.
            p.copy_(p.to(dtype).to(torch.float32))
    ids = torch.randint(0, cfg.vocab_size, (2, 8))
    model.zero_grad()
    out_ = model(input_ids=ids, labels=ids)
    out_.loss.backward()
    layer = cfg.num_hidden_layers - 1
    grad = expert_grad(model, layer, 1, cfg.moe_intermediate_size)
    d = os.path.join(out, name)
    shutil.rmtree(d, ignore_errors=True)
    save = model.to(dtype)
    kw = {"max_shard_size": shard} if shard else {}
    save.save_pretrained(d, **kw)
    if legacy:
        legacy_config(os.path.join(d, "config.json"))
    expected = {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "dtype": str(dtype).removeprefix("torch."),
        "input_ids": ids.tolist(),
        "logits_shape": list(out_.logits.shape),
        "logits": [round(v, 7) for v in out_.logits.detach().flatten().tolist()],
        "loss": out_.loss.item(),
        "grad_name": GRAD_OF.format(l=layer),
        "grad_shape": list(grad.shape),
        "grad": [round(v, 8) for v in grad.flatten().tolist()],
    }
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(expected, f)
    size = sum(os.path.getsize(os.path.join(d, x)) for x in os.listdir(d))
    print(f"{name}: loss {out_.loss.item():.6f}, {size} bytes")
    return size


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "dsv2"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    total = sum(make(args.out, n, *spec, seed=i + 1) for i, (n, spec) in enumerate(FIXTURES.items()))
    print(f"total {total} bytes in {args.out}")
    assert total < 2 * 1024 * 1024, "fixtures must stay under 2 MB"


if __name__ == "__main__":
    main()
