#!/usr/bin/env python3
"""Makes the live Bittensor SN102 (Connito-AI/Connito reference) wire fixtures in tests/fixtures/sn102/.

What the reference does, and what these files pin down:

* Expert assignment: `{"<layer>": [[local_idx, global_idx], ...]}`, one file per group
  (`expert_assignment_g0.json`, `expert_assignment_g1.json`): uneven, non-contiguous, listed
  out of order, layers 1 and 2 (the MoE layers of the tiny DeepSeek-V2 in `config.json`).
* A group-0 miner shard: only that group's routed experts, keys
  `model.layers.{L}.mlp.experts.{E}.gate_up_proj` [2*moe_intermediate, hidden] (gate rows
  first) and `...down_proj` [hidden, moe_intermediate], `E` the global expert id, written with
  `safetensors.torch.save_file` and no metadata (`shard_fp16.safetensors`, byte-identical to the
  reference's name for it, `model_expgroup_0.safetensors`; `shard_bf16.safetensors`), plus the
  legacy `torch.save` forms (`shard_fp16.pt` wrapped in `model_state_dict`,
  `shard_fp16_plain.pt` unwrapped).
* The content hash (`serialize_torch_model_path` + blake2b-24, lowercase hex, 48 chars).
* sr25519 hotkey signatures of the ASCII hash string, base64url without padding.
* Commitment strings serialized exactly as the reference's pydantic models do
  (`model_dump(by_alias=True, exclude_none=True)` + compact `json.dumps`), valid and invalid.
* Negative inputs: a flipped byte, a foreign expert, hostile `.pt` files (a pickle that
  calls `os.system`, a pickle of non-tensors, a storage that announces far more elements than
  its data record holds). The hostile files are built here byte by byte and are never loaded.
* `fixtures.json`: the manifest (files, hashes, keys, signatures, commitments, scenarios with
  the verdict a reader should give, versions).

Run (CI needs no Python: the outputs are committed):

    python3 -m venv /tmp/v && /tmp/v/bin/pip install torch safetensors bittensor==11.3.0
    /tmp/v/bin/python scripts/sn102_fixtures.py [--out tests/fixtures/sn102]

Determinism: tensors come from a fixed torch seed (102), keys from the dev URIs `//Alice`
(miner) and `//Bob` (a foreign key). `torch.save` zips are deterministic for a fixed file
name (the archive prefix is the file stem, zip times are fixed at 1980, and
`.data/serialization_id` hashes the record names and CRCs). sr25519 signing is randomized,
however: every run makes fresh, valid but different signature bytes. So that a rerun changes
nothing, a signature already recorded in `<out>/fixtures.json` is reused when it is over the
same message and still verifies under the same key; pass `--fresh-signatures` to ignore it.

Nothing here talks to a chain or to Hugging Face.
"""

import argparse
import base64
import collections
import hashlib
import importlib.metadata as md
import io
import json
import os
import pickle
import pickletools
import platform
import shutil
import sys
import tempfile

import bittensor_core as core
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors.torch import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The tiny DeepSeek-V2 with 8 routed experts (hidden 32, moe_intermediate 16, 3 layers,
# first_k_dense_replace 1). tests/fixtures/dsv2/plain has only 4 routed experts; `grouped`
# differs from it only in the routing fields (8 experts, n_group 4, topk_group 2, top-3).
CONFIG_SRC = os.path.join("tests", "fixtures", "dsv2", "grouped", "config.json")
SEED = 102
SCALE = 0.02
MINER_URI = "//Alice"
FOREIGN_URI = "//Bob"

# Global expert ids per MoE layer, in listed order (the local index is the position).
GROUPS = {
    0: {"1": [5, 0, 3], "2": [6, 1]},
    1: {"1": [2, 7], "2": [4, 0, 3, 7]},
}
GROUP = 0
# Not in group 0 at layer 1 under any reading: not a global id ({5, 0, 3}) nor a local id ({0, 1, 2}).
FOREIGN = (1, 7)
# Group 1's expert, but also a local id of group 0 at layer 1: the reference allows
# {local ids} | {global ids}, so it accepts this shard; a reader that checks global ids refuses it.
LOCAL_ID_QUIRK = (1, 2)

VERSION = 4_200_000
VALIDATOR_VERSION = 4_200_500
MINER_REPO = "alice/sn102-g0"
MINER_REV = "abc1234"
VALIDATOR_REPO = "val/sn102-model"
VALIDATOR_REV = "def5678"
MINER_SEED = 12345
MAX_COMMIT_BYTES = 128  # CHAIN_COMMIT_MAX_BYTES
MAX_REPO_CHARS = 32  # CHAIN_COMMIT_MAX_HF_REPO_ID_CHARS


# ---------------------------------------------------------------------------------------------
# The reference's code, copied (connito/shared/helper.py, schema.py, chain.py, checkpoints.py).


def serialize_torch_model_path(state) -> bytes:
    if isinstance(state, torch.nn.Module):
        state = state.state_dict()
    elif not isinstance(state, dict):
        raise ValueError("Model file must contain a state_dict or nn.Module")
    buffer = []
    for key, tensor in sorted(state.items(), key=lambda item: item[0]):
        buffer.append(key.encode())
        if tensor.dtype == torch.bfloat16:
            buffer.append(tensor.cpu().contiguous().view(torch.uint8).numpy().tobytes())
        else:
            buffer.append(tensor.cpu().numpy().tobytes())
    return b"".join(buffer)


def get_model_hash_hex(state) -> str:
    return hashlib.blake2b(serialize_torch_model_path(state), digest_size=24).digest().hex()


def sign_message(keypair, message) -> str:
    sig = keypair.sign(message)
    return base64.urlsafe_b64encode(sig).rstrip(b"=").decode("ascii")


def b64url_decode_nopad(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def reference_verify(ss58: str, message: str, signature: str) -> bool:
    """`verify_message`; bittensor_core's verify wants bytes where bittensor 10's took the str."""
    try:
        return bool(core.Keypair(ss58_address=ss58).verify(message.encode(), b64url_decode_nopad(signature)))
    except Exception:
        return False


class SignedModelHashChainCommit(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    signed_model_hash: str | None = Field(default=None, alias="m")


class ValidatorChainCommit(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    model_hash: str | None = Field(default=None, alias="h")
    global_ver: int | None = Field(default=None, alias="v")
    expert_group: int | None = Field(default=None, alias="e")
    miner_seed: int | None = Field(default=None, alias="s")
    hf_repo_id: str | None = Field(default=None, alias="r")
    hf_revision: str | None = Field(default=None, alias="rv")


class MinerChainCommit(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    block: int | None = Field(default=None, alias="b")
    expert_group: int | None = Field(default=None, alias="e")
    signed_model_hash: str | None = Field(default=None, alias="m")
    model_hash: str | None = Field(default=None, alias="h")
    global_ver: int | None = Field(default=None, alias="v")
    inner_opt: int | None = Field(default=None, alias="i")
    hf_repo_id: str | None = Field(default=None, alias="r")
    hf_revision: str | None = Field(default=None, alias="rv")


def serialize_chain_status(status) -> str:
    return json.dumps(status.model_dump(by_alias=True, exclude_none=True), separators=(",", ":"))


def validate_chain_commit_payload(status) -> str:
    """The writer's check (`validate_chain_commit_payload`): repo id first, then bytes."""
    data = serialize_chain_status(status)
    repo = getattr(status, "hf_repo_id", None)
    if repo and len(repo) > MAX_REPO_CHARS:
        raise ValueError(f"HF repo id is too long for the chain payload budget: {len(repo)} > {MAX_REPO_CHARS}")
    if len(data.encode()) > MAX_COMMIT_BYTES:
        raise ValueError(f"Chain commit exceeds payload budget: {len(data.encode())} > {MAX_COMMIT_BYTES} bytes")
    return data


def reference_parse(model, text: str) -> str:
    """What `get_chain_commits` does with a commitment string: "ok" or the error's type."""
    try:
        model.model_validate(json.loads(text))
        return "ok"
    except json.JSONDecodeError:
        return "JSONDecodeError"
    except ValidationError:
        return "ValidationError"


def reference_group_check(state: dict, assignment: dict) -> bool:
    """`_verify_expert_group` for one group: finite floats, routed experts, id in {local}|{global}."""
    import re

    if not state:
        return False
    routed = 0
    for name, tensor in state.items():
        if torch.is_floating_point(tensor) and not torch.isfinite(tensor).all():
            return False
        m = re.search(r"layers\.(\d+)(?:\.mlp\.experts\.(\d+))?", name)
        if m is None or m.group(2) is None:
            return False
        routed += 1
        pairs = assignment.get(str(int(m.group(1))), [])
        allowed = {int(a) for a, _ in pairs} | {int(b) for _, b in pairs}
        if int(m.group(2)) not in allowed:
            return False
    return routed > 0


# ---------------------------------------------------------------------------------------------
# torch.save's zip layout, written record by record (serialization._save), for the hostile files.


class StorageRef:
    def __init__(self, storage_type, key, numel):
        self.storage_type, self.key, self.numel = storage_type, key, numel


class TensorRef:
    """Pickles as torch's tensor does: `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`."""

    def __init__(self, storage, size, stride, offset=0):
        self.storage, self.size, self.stride, self.offset = storage, tuple(size), tuple(stride), offset

    def __reduce__(self):
        return (
            torch._utils._rebuild_tensor_v2,
            (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict()),
        )


class TorchLikePickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, StorageRef):
            return ("storage", obj.storage_type, obj.key, "cpu", obj.numel)
        return None


def torch_like_pickle(obj) -> bytes:
    buf = io.BytesIO()
    TorchLikePickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def as_refs(sd: dict, storage_type):
    """A state dict of contiguous tensors as TensorRefs (one storage each, keys "0", "1", ...)."""
    refs, records = {}, {}
    for i, (name, t) in enumerate(sd.items()):
        key = str(i)
        refs[name] = TensorRef(StorageRef(storage_type, key, t.numel()), t.shape, t.stride())
        records[f"data/{key}"] = t.contiguous().view(torch.uint8).numpy().tobytes()
    return refs, records


def write_torch_zip(path: str, data_pkl: bytes, records: dict):
    """The records `torch.save` writes, in its order, through torch's own zip writer."""
    from torch.serialization import _get_storage_alignment, get_crc32_options

    w = torch._C.PyTorchFileWriter(path, get_crc32_options(), _get_storage_alignment())
    w.write_record("data.pkl", data_pkl, len(data_pkl))
    w.write_record(".format_version", "1", 1)
    align = str(_get_storage_alignment())
    w.write_record(".storage_alignment", align, len(align))
    w.write_record("byteorder", sys.byteorder, len(sys.byteorder))
    for name, data in records.items():
        w.write_record(name, data, len(data))
    w.write_end_of_file()
    del w


def evil_pickle() -> bytes:
    """`{"model_state_dict": os.system("echo pwned")}` in protocol-2 opcodes, built by hand."""

    def unicode(s):
        b = s.encode()
        return b"X" + len(b).to_bytes(4, "little") + b

    return (
        b"\x80\x02"  # PROTO 2
        + b"}"  # EMPTY_DICT
        + unicode("model_state_dict")
        + b"cos\nsystem\n"  # GLOBAL 'os system'
        + unicode("echo pwned")
        + b"\x85"  # TUPLE1
        + b"R"  # REDUCE: calls os.system("echo pwned") on load
        + b"s"  # SETITEM
        + b"."  # STOP
    )


# ---------------------------------------------------------------------------------------------


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def raw_safetensors_hash(path) -> str:
    """The same hash straight from the file's bytes, without torch: key then data, sorted keys."""
    with open(path, "rb") as f:
        blob = f.read()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    assert "__metadata__" not in header, path
    data = blob[8 + n :]
    out = b"".join(
        k.encode() + data[header[k]["data_offsets"][0] : header[k]["data_offsets"][1]] for k in sorted(header)
    )
    return hashlib.blake2b(out, digest_size=24).hexdigest()


def expert_keys(layer, expert):
    base = f"model.layers.{layer}.mlp.experts.{expert}"
    return f"{base}.gate_up_proj", f"{base}.down_proj"


def expert_tensors(gen, hidden, im):
    gate_up = torch.randn(2 * im, hidden, generator=gen) * SCALE
    down = torch.randn(hidden, im, generator=gen) * SCALE
    return gate_up, down


def check_config(cfg):
    n = cfg["n_routed_experts"]
    moe_layers = [str(l) for l in range(cfg["first_k_dense_replace"], cfg["num_hidden_layers"])]
    for g, layers in GROUPS.items():
        assert sorted(layers) == moe_layers, (g, layers, moe_layers)
        for ids in layers.values():
            assert all(0 <= e < n for e in ids) and len(set(ids)) == len(ids), (g, ids)
    for l in moe_layers:
        assert not set(GROUPS[0][l]) & set(GROUPS[1][l]), l
    assert FOREIGN[1] not in GROUPS[0][str(FOREIGN[0])] and FOREIGN[1] >= len(GROUPS[0][str(FOREIGN[0])])
    assert LOCAL_ID_QUIRK[1] in GROUPS[1][str(LOCAL_ID_QUIRK[0])]
    assert LOCAL_ID_QUIRK[1] < len(GROUPS[0][str(LOCAL_ID_QUIRK[0])])
    return moe_layers


class Signer:
    """sr25519 signatures of the ASCII bytes of a message, reusing verified old ones (see docstring)."""

    def __init__(self, old, fresh):
        self.old = {} if fresh else (old or {}).get("signatures", {})
        self.made = {}

    def sign(self, name, keypair, message: bytes, signer):
        prior = self.old.get(name)
        sig = None
        if prior and prior.get("signer") == signer and prior.get("message") == message.decode():
            try:
                raw = b64url_decode_nopad(prior["b64url"])
                if len(raw) == 64 and keypair.verify(message, raw):
                    sig = raw
            except Exception:
                sig = None
        if sig is None:
            sig = keypair.sign(message)
        assert len(sig) == 64 and keypair.verify(message, sig)
        enc = base64.urlsafe_b64encode(sig).rstrip(b"=").decode("ascii")
        assert len(enc) == 86
        self.made[name] = {"signer": signer, "message": message.decode(), "b64url": enc, "hex": sig.hex()}
        return enc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "sn102"))
    ap.add_argument("--fresh-signatures", action="store_true", help="sign anew even if fixtures.json has signatures")
    args = ap.parse_args()
    out = args.out
    os.makedirs(out, exist_ok=True)
    old_manifest = None
    mpath = os.path.join(out, "fixtures.json")
    if os.path.exists(mpath):
        with open(mpath) as f:
            old_manifest = json.load(f)
    for name in os.listdir(out):  # a clean directory, so nothing stale survives
        p = os.path.join(out, name)
        if os.path.isfile(p):
            os.remove(p)

    files = {}

    def record(name, kind, **extra):
        path = os.path.join(out, name)
        os.chmod(path, 0o644)  # safetensors writes 0600
        files[name] = {"kind": kind, "bytes": os.path.getsize(path), "sha256": sha256_file(path), **extra}

    # -- config and assignments ---------------------------------------------------------------
    shutil.copyfile(os.path.join(ROOT, CONFIG_SRC), os.path.join(out, "config.json"))
    with open(os.path.join(out, "config.json")) as f:
        cfg = json.load(f)
    moe_layers = check_config(cfg)
    hidden, im = cfg["hidden_size"], cfg["moe_intermediate_size"]
    record("config.json", "config", copied_from=CONFIG_SRC.replace(os.sep, "/"))

    assignments = {}
    for g, layers in GROUPS.items():
        a = {l: [[i, e] for i, e in enumerate(layers[l])] for l in sorted(layers, key=int)}
        assignments[g] = a
        write_json(os.path.join(out, f"expert_assignment_g{g}.json"), a)
        record(f"expert_assignment_g{g}.json", "expert_assignment", group=g)

    # -- shard tensors ---------------------------------------------------------------------------
    gen = torch.Generator().manual_seed(SEED)
    master = {}  # fp32 values, in generation order: group 0's layers, then listed experts
    for l in moe_layers:
        for e in GROUPS[GROUP][l]:
            gu, dn = expert_tensors(gen, hidden, im)
            ku, kd = expert_keys(l, e)
            master[ku], master[kd] = gu, dn
    extra = {}
    for l, e in (FOREIGN, LOCAL_ID_QUIRK):
        gu, dn = expert_tensors(gen, hidden, im)
        ku, kd = expert_keys(l, e)
        extra[(l, e)] = {ku: gu, kd: dn}

    sd16 = {k: v.to(torch.float16).contiguous() for k, v in master.items()}
    sd_bf = {k: v.to(torch.bfloat16).contiguous() for k, v in master.items()}
    for k, v in sd16.items():
        assert torch.isfinite(v).all()

    hashes = {}

    def save_st(name, sd, dtype_label, **extra_info):
        path = os.path.join(out, name)
        save_file({k: v.contiguous() for k, v in sd.items()}, path)
        h = get_model_hash_hex(load_file(path, device="cpu"))
        assert h == get_model_hash_hex(sd) == raw_safetensors_hash(path), name
        assert len(h) == 48 and h == h.lower()
        hashes[name] = h
        record(name, "shard_safetensors", dtype=dtype_label, hash=h, keys=sorted(sd), **extra_info)
        return h

    h16 = save_st("shard_fp16.safetensors", sd16, "float16")
    h_ref_name = save_st("model_expgroup_0.safetensors", sd16, "float16", same_bytes_as="shard_fp16.safetensors")
    assert h_ref_name == h16
    assert sha256_file(os.path.join(out, "model_expgroup_0.safetensors")) == files["shard_fp16.safetensors"]["sha256"]
    hbf = save_st("shard_bf16.safetensors", sd_bf, "bfloat16")
    assert hbf != h16

    # one flipped byte: the low mantissa byte of the first element stored (stays finite)
    src = os.path.join(out, "shard_fp16.safetensors")
    with open(src, "rb") as f:
        blob = bytearray(f.read())
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    first = min((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])
    at = 8 + n + header[first]["data_offsets"][0]
    blob[at] ^= 0x01
    with open(os.path.join(out, "shard_fp16_flipped.safetensors"), "wb") as f:
        f.write(bytes(blob))
    flipped = load_file(os.path.join(out, "shard_fp16_flipped.safetensors"))
    assert all(torch.isfinite(v).all() for v in flipped.values())
    hflip = get_model_hash_hex(flipped)
    assert hflip == raw_safetensors_hash(os.path.join(out, "shard_fp16_flipped.safetensors")) and hflip != h16
    hashes["shard_fp16_flipped.safetensors"] = hflip
    record(
        "shard_fp16_flipped.safetensors",
        "shard_safetensors",
        dtype="float16",
        hash=hflip,
        flipped={"file_offset": at, "xor": 1, "tensor": first},
    )

    # key order: Python's `sorted` puts "experts.10" before "experts.2" and "layers.10" before
    # "layers.2" (strings, not numbers); a hash over numerically sorted keys would differ
    gen_order = torch.Generator().manual_seed(7)
    sd_order = {}
    for layer, expert in ((2, 2), (2, 10), (10, 2), (1, 11)):
        sd_order[f"model.layers.{layer}.mlp.experts.{expert}.down_proj"] = (
            torch.randn((2, 3), generator=gen_order) * 0.02
        ).to(torch.float16)
    h_order = save_st("key_order.safetensors", sd_order, "float16", purpose="string key order")
    numeric = sorted(sd_order, key=lambda k: [int(x) if x.isdigit() else x for x in k.split(".")])
    assert numeric != sorted(sd_order)
    by_number = b"".join(k.encode() + sd_order[k].numpy().tobytes() for k in numeric)
    assert h_order != hashlib.blake2b(by_number, digest_size=24).hexdigest()

    sd_foreign = dict(sd16, **{k: v.to(torch.float16) for k, v in extra[FOREIGN].items()})
    hfor = save_st("shard_fp16_foreign_expert.safetensors", sd_foreign, "float16", extra_expert=list(FOREIGN))
    sd_quirk = dict(sd16, **{k: v.to(torch.float16) for k, v in extra[LOCAL_ID_QUIRK].items()})
    hquirk = save_st("shard_fp16_local_id_quirk.safetensors", sd_quirk, "float16", extra_expert=list(LOCAL_ID_QUIRK))
    assert reference_group_check(sd16, assignments[GROUP])
    assert reference_group_check(sd_bf, assignments[GROUP])
    assert not reference_group_check(sd_foreign, assignments[GROUP])
    assert reference_group_check(sd_quirk, assignments[GROUP])  # the reference's {local}|{global} union
    assert not reference_group_check(sd16, assignments[1])

    # -- legacy .pt -------------------------------------------------------------------------------
    for name, obj, form in (
        ("shard_fp16.pt", {"model_state_dict": sd16}, "wrapped"),
        ("shard_fp16_plain.pt", sd16, "plain"),
    ):
        path = os.path.join(out, name)
        torch.save(obj, path)
        loaded = torch.load(path, map_location="cpu", weights_only=True)  # our own honest file
        if isinstance(loaded, dict) and isinstance(loaded.get("model_state_dict"), dict):
            loaded = loaded["model_state_dict"]
        h = get_model_hash_hex(loaded)
        assert h == h16, name
        hashes[name] = h
        record(name, "shard_pt", dtype="float16", form=form, hash=h)
        # our record-by-record writer reproduces torch.save exactly, so the hostile files below
        # have torch's own layout
        refs, recs = as_refs(sd16, torch.HalfStorage)
        mimic = {"model_state_dict": refs} if form == "wrapped" else refs
        with tempfile.TemporaryDirectory() as td:
            twin = os.path.join(td, name)
            write_torch_zip(twin, torch_like_pickle(mimic), recs)
            assert sha256_file(twin) == files[name]["sha256"], f"torch.save layout drifted for {name}"

    # -- hostile .pt (never loaded) -------------------------------------------------------------
    evil = evil_pickle()
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(evil)]
    assert ("GLOBAL", "os system") in ops and ("REDUCE", None) in ops
    write_torch_zip(os.path.join(out, "evil_global.pt"), evil, {})
    record("evil_global.pt", "hostile_pt", what="data.pkl: {'model_state_dict': os.system('echo pwned')} via GLOBAL 'os system' + REDUCE; no data records")

    not_tensors = {"a": 1, "b": "text"}
    try:  # what the reference's hash does with it, on the in-memory dict (the file is not loaded)
        serialize_torch_model_path(not_tensors)
        raise AssertionError("hashed non-tensors")
    except AttributeError:
        pass
    torch.save({"model_state_dict": not_tensors}, os.path.join(out, "not_tensors.pt"))
    record("not_tensors.pt", "hostile_pt", what="torch.save({'model_state_dict': {'a': 1, 'b': 'text'}}): loads under weights_only, holds no tensors")

    big_rows = big_cols = 65536
    real = sd16[first][:1, :4].contiguous()  # 4 fp16 values, 8 bytes
    over_refs = {
        first: TensorRef(StorageRef(torch.HalfStorage, "0", big_rows * big_cols), (big_rows, big_cols), (big_cols, 1))
    }
    over_pkl = torch_like_pickle({"model_state_dict": over_refs})
    write_torch_zip(
        os.path.join(out, "oversized.pt"), over_pkl, {"data/0": real.view(torch.uint8).numpy().tobytes()}
    )
    record(
        "oversized.pt",
        "hostile_pt",
        what=f"torch layout; the pickle announces HalfStorage numel {big_rows * big_cols} and a [{big_rows}, {big_cols}] tensor ({2 * big_rows * big_cols} bytes), data/0 holds 8 bytes",
        announced_numel=big_rows * big_cols,
        data_bytes=8,
    )

    # -- keys and signatures ------------------------------------------------------------------------
    alice = core.Keypair.create_from_uri(MINER_URI)
    bob = core.Keypair.create_from_uri(FOREIGN_URI)
    signer = Signer(old_manifest, args.fresh_signatures)
    sig16 = signer.sign("alice_fp16", alice, h16.encode(), "alice")
    sigbf = signer.sign("alice_bf16", alice, hbf.encode(), "alice")
    sigfor = signer.sign("alice_foreign_expert", alice, hfor.encode(), "alice")
    sigquirk = signer.sign("alice_local_id_quirk", alice, hquirk.encode(), "alice")
    sigbob = signer.sign("bob_fp16", bob, h16.encode(), "bob")
    wrapped = b"<Bytes>" + h16.encode() + b"</Bytes>"
    sigwrap = signer.sign("alice_fp16_wrapped", alice, wrapped, "alice")

    # what Keypair.sign does with a str: signs its UTF-8 bytes, unless it starts with 0x (hex-decoded)
    str_sig = alice.sign(h16)
    assert alice.verify(h16.encode(), str_sig)
    hex_msg = "0x" + h16[:8]
    hx = alice.sign(hex_msg)
    assert alice.verify(bytes.fromhex(h16[:8]), hx) and not alice.verify(hex_msg.encode(), hx)
    try:
        alice.verify(h16, str_sig)
        verify_takes_str = True
    except TypeError:
        verify_takes_str = False

    assert reference_verify(alice.ss58_address, h16, sig16)
    assert reference_verify(alice.ss58_address, hbf, sigbf)
    assert not reference_verify(alice.ss58_address, h16, sigbob)
    assert reference_verify(bob.ss58_address, h16, sigbob)
    assert not reference_verify(alice.ss58_address, h16, sigbf)
    assert reference_verify(alice.ss58_address, h16, sigwrap)  # sp-core also accepts <Bytes>-wrapped
    padded = sig16 + "=" * (-len(sig16) % 4)
    std_alpha = sig16.replace("-", "+").replace("_", "/")
    truncated = sig16[:-1]
    assert reference_verify(alice.ss58_address, h16, padded)
    std_alpha_ok = reference_verify(alice.ss58_address, h16, std_alpha)
    assert not reference_verify(alice.ss58_address, h16, truncated)

    signatures = {
        "scheme": "sr25519 by the hotkey over the ASCII bytes of the 48-char lowercase hex hash; "
        "base64url without padding (86 chars). sr25519 signing is randomized: verify, never compare bytes.",
        **signer.made,
        "variants": {
            "padded": {"b64": padded, "reference_verifies": True, "note": "b64url_decode_nopad adds no padding when present; decodes fine"},
            "standard_alphabet": {
                "b64": std_alpha,
                "differs": std_alpha != sig16,
                "reference_verifies": std_alpha_ok,
                "note": "urlsafe_b64decode maps -_ to +/ and leaves +/ alone, so the standard alphabet decodes too",
            },
            "truncated": {"b64": truncated, "reference_verifies": False, "note": "85 chars: 63 bytes after decoding"},
            "wrapped": {"b64": sigwrap, "reference_verifies": True, "note": "signature over b'<Bytes>'+hash+b'</Bytes>'; sp-core's verify accepts it for the bare hash"},
        },
    }

    # -- commitments -------------------------------------------------------------------------------
    def commit(model, **fields):
        text = serialize_chain_status(model(**fields))
        assert reference_parse(model, text) == "ok"
        return text

    repo32 = "alice-sn102-miner/" + "g" * (MAX_REPO_CHARS - len("alice-sn102-miner/"))
    repo33 = repo32 + "x"
    assert len(repo32) == 32 and len(repo33) == 33
    commits = {}

    def add(name, role, phase, text, verdict, model, writer_error=None, note=None):
        entry = {
            "role": role,
            "phase": phase,
            "text": text,
            "bytes": len(text.encode()),
            "verdict": verdict,
            "reference_parse": reference_parse(model, text),
        }
        if writer_error is not None:
            entry["reference_writer_error"] = writer_error
        if note:
            entry["note"] = note
        commits[name] = entry

    mc1 = commit(SignedModelHashChainCommit, m=sig16)
    assert mc1 == json.dumps({"m": sig16}, separators=(",", ":")) and len(mc1) == 94
    add("miner_commit1", "miner", "MinerCommit1", mc1, "accepted", SignedModelHashChainCommit)
    mc2_fields = dict(e=GROUP, h=h16, v=VERSION, r=MINER_REPO, rv=MINER_REV)
    mc2 = commit(MinerChainCommit, **mc2_fields)
    assert mc2 == json.dumps(mc2_fields, separators=(",", ":"))
    validate_chain_commit_payload(MinerChainCommit(**mc2_fields))
    add("miner_commit2", "miner", "MinerCommit2", mc2, "accepted", MinerChainCommit)
    vhb_fields = dict(h=h16, v=VERSION, e=GROUP, s=MINER_SEED)
    vhb = commit(ValidatorChainCommit, **vhb_fields)
    assert vhb == json.dumps(vhb_fields, separators=(",", ":"))
    add("validator_commit1", "validator", "MinerCommit1 (heartbeat; `s` from PR #115)", vhb, "accepted", ValidatorChainCommit)
    vc2_fields = dict(h=h16, v=VALIDATOR_VERSION, e=GROUP, r=VALIDATOR_REPO, rv=VALIDATOR_REV)
    vc2 = commit(ValidatorChainCommit, **vc2_fields)
    assert vc2 == json.dumps(vc2_fields, separators=(",", ":"))
    validate_chain_commit_payload(ValidatorChainCommit(**vc2_fields))
    add("validator_commit2", "validator", "ValidatorCommit2", vc2, "accepted", ValidatorChainCommit)
    add("miner_commit1_bob", "miner", "MinerCommit1", commit(SignedModelHashChainCommit, m=sigbob), "accepted", SignedModelHashChainCommit,
        note="parses; signature check fails when alice's hotkey commits it (scenario bad_signature_foreign_key)")
    add("miner_commit1_bf16", "miner", "MinerCommit1", commit(SignedModelHashChainCommit, m=sigbf), "accepted", SignedModelHashChainCommit)
    add("miner_commit1_foreign_expert", "miner", "MinerCommit1", commit(SignedModelHashChainCommit, m=sigfor), "accepted", SignedModelHashChainCommit)
    add("miner_commit1_local_id_quirk", "miner", "MinerCommit1", commit(SignedModelHashChainCommit, m=sigquirk), "accepted", SignedModelHashChainCommit)
    add("miner_commit2_bf16", "miner", "MinerCommit2", commit(MinerChainCommit, **dict(mc2_fields, h=hbf)), "accepted", MinerChainCommit)
    add("miner_commit2_foreign_expert", "miner", "MinerCommit2", commit(MinerChainCommit, **dict(mc2_fields, h=hfor)), "accepted", MinerChainCommit)
    add("miner_commit2_local_id_quirk", "miner", "MinerCommit2", commit(MinerChainCommit, **dict(mc2_fields, h=hquirk)), "accepted", MinerChainCommit)
    add("miner_commit2_group1", "miner", "MinerCommit2", commit(MinerChainCommit, **dict(mc2_fields, e=1)), "accepted", MinerChainCommit,
        note="parses; group 0's shard under e=1 fails the group check (scenario not_in_group_wrong_group)")

    at128 = dict(mc2_fields, r=repo32)
    t128 = commit(MinerChainCommit, **at128)
    assert len(t128.encode()) == 128
    validate_chain_commit_payload(MinerChainCommit(**at128))
    add("miner_commit2_128_bytes", "miner", "MinerCommit2", t128, "accepted", MinerChainCommit, note="exactly at the limit: 32-char repo, 7-digit v")

    long_v = dict(at128, v=VERSION * 10)
    t129 = commit(MinerChainCommit, **long_v)
    assert len(t129.encode()) == 129
    try:
        validate_chain_commit_payload(MinerChainCommit(**long_v))
        raise AssertionError("129 bytes accepted")
    except ValueError as e:
        err = str(e)
    add("miner_commit2_129_bytes", "miner", "MinerCommit2", t129, "commitment_too_long", MinerChainCommit, writer_error=err,
        note="32-char repo (allowed), 8-digit v: 129 bytes. The reader's json.loads/model_validate would parse it; the writer refuses it and the chain's Raw field holds at most 128")

    long_r = dict(mc2_fields, r=repo33)
    t129r = commit(MinerChainCommit, **long_r)
    assert len(t129r.encode()) == 129
    try:
        validate_chain_commit_payload(MinerChainCommit(**long_r))
        raise AssertionError("33-char repo accepted")
    except ValueError as e:
        err = str(e)
    add("miner_commit2_129_bytes_long_repo", "miner", "MinerCommit2", t129r, "commitment_too_long", MinerChainCommit, writer_error=err,
        note="33-char repo, 129 bytes: the reference's writer reports the repo id first (HF repo id is too long)")

    add("not_json", "miner", "MinerCommit2", "not json {", "malformed_commitment", MinerChainCommit)
    add("json_array", "miner", "MinerCommit2", "[0,1]", "malformed_commitment", MinerChainCommit)
    wrong = json.dumps(dict(mc2_fields, e="zero"), separators=(",", ":"))
    add("wrong_type_e", "miner", "MinerCommit2", wrong, "malformed_commitment", MinerChainCommit)
    extra_key = json.dumps(dict(mc2_fields, x=1), separators=(",", ":"))
    assert len(extra_key.encode()) <= 128
    add("unknown_key", "miner", "MinerCommit2", extra_key, "accepted", MinerChainCommit, note="pydantic's default extra='ignore': unknown keys are dropped")
    lax = json.dumps(dict(mc2_fields, e="0"), separators=(",", ":"))
    add("lax_string_e", "miner", "MinerCommit2", lax, "malformed_commitment", MinerChainCommit,
        note="pydantic's lax mode coerces \"0\" (also 0.0, true, \" 1 \") to int, so the reference accepts this; a reader that wants JSON types refuses it")
    for name, c in commits.items():
        if c["verdict"] == "accepted":
            assert c["reference_parse"] == "ok", name

    # -- scenarios: a hotkey's commit1 + commit2 + the file downloaded for it ---------------------
    def scen(file, c1, c2, hotkey, verdict, reference_verdict=None, note=None):
        s = {"file": file, "hotkey": hotkey, "commit1": c1, "commit2": c2, "verdict": verdict}
        s["reference_verdict"] = reference_verdict or verdict
        if note:
            s["note"] = note
        return s

    scenarios = {
        "accepted_fp16": scen("shard_fp16.safetensors", "miner_commit1", "miner_commit2", "alice", "accepted"),
        "accepted_reference_name": scen("model_expgroup_0.safetensors", "miner_commit1", "miner_commit2", "alice", "accepted"),
        "accepted_bf16": scen("shard_bf16.safetensors", "miner_commit1_bf16", "miner_commit2_bf16", "alice", "accepted"),
        "accepted_pt_wrapped": scen("shard_fp16.pt", "miner_commit1", "miner_commit2", "alice", "accepted"),
        "accepted_pt_plain": scen("shard_fp16_plain.pt", "miner_commit1", "miner_commit2", "alice", "accepted"),
        "bad_signature_foreign_key": scen("shard_fp16.safetensors", "miner_commit1_bob", "miner_commit2", "alice", "bad_signature",
                                          note="bob's signature of the right hash, committed under alice's hotkey"),
        "bad_signature_other_hash": scen("shard_fp16.safetensors", "miner_commit1_bf16", "miner_commit2", "alice", "bad_signature",
                                         note="alice's signature of the bf16 hash; commit2 names the fp16 hash"),
        "hash_mismatch_flipped": scen("shard_fp16_flipped.safetensors", "miner_commit1", "miner_commit2", "alice", "hash_mismatch"),
        "hash_mismatch_bf16_file": scen("shard_bf16.safetensors", "miner_commit1", "miner_commit2", "alice", "hash_mismatch",
                                        note="same values, other dtype: the hash covers the stored bytes"),
        "not_in_group_foreign_expert": scen("shard_fp16_foreign_expert.safetensors", "miner_commit1_foreign_expert", "miner_commit2_foreign_expert", "alice", "not_in_group",
                                            note=f"extra layer {FOREIGN[0]} expert {FOREIGN[1]}; signature and hash are right"),
        "not_in_group_local_id_quirk": scen("shard_fp16_local_id_quirk.safetensors", "miner_commit1_local_id_quirk", "miner_commit2_local_id_quirk", "alice", "not_in_group",
                                            reference_verdict="accepted",
                                            note=f"extra layer {LOCAL_ID_QUIRK[0]} expert {LOCAL_ID_QUIRK[1]} (group 1's); the reference allows local ids too, and {LOCAL_ID_QUIRK[1]} is a local id of group 0 there"),
        "not_in_group_wrong_group": scen("shard_fp16.safetensors", "miner_commit1", "miner_commit2_group1", "alice", "not_in_group"),
        "unsupported_format_evil_global": scen("evil_global.pt", "miner_commit1", "miner_commit2", "alice", "unsupported_format",
                                               reference_verdict="unsupported_format (expected, not run: weights_only=True refuses GLOBAL os.system with UnpicklingError; validate() logs 'unknown')"),
        "unsupported_format_not_tensors": scen("not_tensors.pt", "miner_commit1", "miner_commit2", "alice", "unsupported_format",
                                               reference_verdict="unsupported_format (loads under weights_only; hashing raises AttributeError on int; validate() logs 'unknown')"),
        "unsupported_format_oversized": scen("oversized.pt", "miner_commit1", "miner_commit2", "alice", "unsupported_format",
                                             reference_verdict="unsupported_format (not run here: never loaded)"),
    }

    manifest = {
        "about": "SN102 (Connito-AI/Connito) wire fixtures made by scripts/sn102_fixtures.py; see its docstring",
        "reference": {"repo": "Connito-AI/Connito", "mirror_head": "0c936fae97b96e6f5003a166ff4e410a4840e239 (v0.1.37)",
                      "notes": "shard name model_expgroup_{g}.safetensors (#118), .pt tried second; hash helper.py serialize_torch_model_path"},
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "safetensors": md.version("safetensors"),
            "bittensor": md.version("bittensor"),
            "bittensor_core": md.version("bittensor_core"),
            "pydantic": md.version("pydantic"),
            "numpy": md.version("numpy"),
        },
        "model": {
            "config": "config.json",
            "hidden_size": hidden,
            "moe_intermediate_size": im,
            "n_routed_experts": cfg["n_routed_experts"],
            "num_hidden_layers": cfg["num_hidden_layers"],
            "first_k_dense_replace": cfg["first_k_dense_replace"],
            "moe_layers": [int(l) for l in moe_layers],
        },
        "groups": {
            str(g): {"file": f"expert_assignment_g{g}.json", "assignment": assignments[g]} for g in GROUPS
        },
        "shard": {
            "group": GROUP,
            "seed": SEED,
            "values": f"torch.randn(shape, generator=torch.Generator().manual_seed({SEED})) * {SCALE} in float32, gate_up then down per expert, group 0's layers in order and experts in listed order, then the extra experts {list(FOREIGN)} and {list(LOCAL_ID_QUIRK)}; fp16 and bf16 are casts of the float32 values",
            "key_format": "model.layers.{L}.mlp.experts.{E}.{gate_up_proj|down_proj}",
            "shapes": {"gate_up_proj": [2 * im, hidden], "down_proj": [hidden, im]},
            "gate_up_rows": f"rows 0..{im} gate, {im}..{2 * im} up",
            "dtypes": {"shard_fp16.safetensors": "float16", "shard_bf16.safetensors": "bfloat16"},
            "keys": sorted(sd16),
        },
        "hash": {
            "formula": "blake2b(digest_size=24) over concat(key.encode() + tensor bytes) for keys in Python sorted() order; bf16 via view(uint8), others numpy().tobytes(); lowercase hex",
            "fp16": h16,
            "bf16": hbf,
            "flipped": hflip,
            "foreign_expert": hfor,
            "local_id_quirk": hquirk,
            "by_file": hashes,
        },
        "keys": {
            name: {"uri": uri, "ss58": kp.ss58_address, "public_key_hex": kp.public_key.hex(), "crypto": "sr25519", "ss58_format": kp.ss58_format}
            for name, uri, kp in (("alice", MINER_URI, alice), ("bob", FOREIGN_URI, bob))
        },
        "keypair_sign": {
            "str": "Keypair.sign(str) signs the str's UTF-8 bytes (a signature of the str verifies against its .encode()), except a 0x-prefixed str, which is hex-decoded first",
            "bytes": "Keypair.sign(bytes) signs the bytes as given; the fixtures sign hash.encode('ascii')",
            "verify_accepts_str": verify_takes_str,
            "randomized": True,
        },
        "signatures": signatures,
        "commitments": commits,
        "commitment_rules": {
            "serialize": "model_dump(by_alias=True, exclude_none=True) then json.dumps(separators=(',', ':'))",
            "miner_key_order": ["b", "e", "m", "h", "v", "i", "r", "rv"],
            "validator_key_order": ["h", "v", "e", "s", "r", "rv"],
            "max_bytes": MAX_COMMIT_BYTES,
            "max_repo_chars": MAX_REPO_CHARS,
        },
        "scenarios": scenarios,
        "verdicts": ["accepted", "bad_signature", "hash_mismatch", "not_in_group", "unsupported_format", "malformed_commitment", "commitment_too_long"],
        "files": files,
    }
    write_json(mpath, manifest)
    total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"wrote {len(os.listdir(out))} files, {total} bytes, to {out}")
    print(f"fp16 hash {h16}\nbf16 hash {hbf}")


if __name__ == "__main__":
    main()
