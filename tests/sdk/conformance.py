"""Drives a running `connito devnet` with the official bittensor SDK and prints what happened as
one JSON line (checked by tests/it/devnet_sdk.rs).

Usage:
  python conformance.py ws://127.0.0.1:PORT commit-reveal TEMPO
      register two hotkeys and stake with //Alice, set and read back a commitment, serve an axon,
      commit weights, reveal them in the next epoch, wait for the epoch after, read the metagraph
  python conformance.py ws://127.0.0.1:PORT set-weights
      register and stake, set weights (commit-reveal off), set them again too fast, transfer
  python conformance.py ws://127.0.0.1:PORT sn102-commit TEXT
      register a hotkey and set TEXT as its commitment, one Raw field, as the SN102 reference
      does (`subtensor.set_commitment(wallet, netuid, data)`: `Raw{len}` of the UTF-8 bytes)

Every call is a plain signed extrinsic through `Subtensor.submit_call` (the SDK's intents for
registration and weights need pallets and storage that finney spec 365 lacks).
"""
import hashlib
import json
import struct
import sys
import time

import bittensor as bt
import bittensor_core as core
from bittensor import calls

NETUID = 102
ALICE = core.Keypair.create_from_uri("//Alice")
BOB = core.Keypair.create_from_uri("//Bob")
V = core.Keypair.create_from_uri("//connito-validator")
M = core.Keypair.create_from_uri("//connito-miner")
DEADLINE = time.time() + 240


def submit(s, call, signer):
    r = s.submit_call(call, signer)
    block = int(r.extrinsic_id.split("-")[0]) if r.extrinsic_id else None
    return {
        "success": r.success,
        "error": r.error.name if r.error else None,
        "message": r.message,
        "block": block,
    }


def must(step, out):
    if not out["success"]:
        raise SystemExit(f"{step} failed: {out}")
    return out


def wait_for_block(s, n):
    while s.block < n:
        if time.time() > DEADLINE:
            raise SystemExit(f"timed out waiting for block {n}")
        time.sleep(0.05)


def compact(n):
    if n < 1 << 6:
        return bytes([n << 2])
    if n < 1 << 14:
        return struct.pack("<H", (n << 2) | 1)
    return struct.pack("<I", (n << 2) | 2)


def vec_u16(xs):
    return compact(len(xs)) + b"".join(struct.pack("<H", x) for x in xs)


def commit_hash(hotkey, uids, values, salt, version_key):
    """blake2-256 of SCALE (hotkey, netuid, uids, values, salt, version_key), as Subtensor."""
    data = (bytes(hotkey.public_key) + struct.pack("<H", NETUID) + vec_u16(uids) + vec_u16(values)
            + vec_u16(salt) + struct.pack("<Q", version_key))
    return "0x" + hashlib.blake2b(data, digest_size=32).hexdigest()


def register_and_stake(s, out):
    for name, key in (("register_validator", V), ("register_miner", M)):
        call = calls.SubtensorModule.burned_register(netuid=NETUID, hotkey=key.ss58_address)
        out[name] = must(name, submit(s, call, ALICE))
    again = calls.SubtensorModule.burned_register(netuid=NETUID, hotkey=V.ss58_address)
    out["register_again"] = submit(s, again, ALICE)
    stake = calls.SubtensorModule.add_stake(hotkey=V.ss58_address, netuid=NETUID,
                                            amount_staked=100 * 10**9)
    out["add_stake"] = must("add_stake", submit(s, stake, ALICE))


def neurons(s):
    mg = s.subnets.metagraph(NETUID)
    return mg, [{
        "uid": n.uid,
        "hotkey": n.hotkey,
        "coldkey": n.coldkey,
        "stake_rao": int(n.alpha_stake.rao),
        "last_update": n.last_update,
        "block_at_registration": n.block_at_registration,
        "validator_permit": n.validator_permit,
        "incentive": n.incentive,
        "dividends": n.dividends,
        "axon": n.axon,
        "commitment": n.commitment.data if n.commitment else None,
    } for n in mg.neurons]


def weights_rows(s, n):
    rows = [[] for _ in range(n)]
    for uid, row in s.query_map(("SubtensorModule", "Weights"), [NETUID]):
        rows[int(uid)] = [[int(j), int(w)] for j, w in row]
    return rows


def commit_reveal(url, tempo):
    s = bt.Subtensor(url)
    out = {"validator": V.ss58_address, "miner": M.ss58_address, "alice": ALICE.ss58_address}
    register_and_stake(s, out)
    info = {"fields": [{"Raw5": "0x" + b"hello".hex()}]}
    out["set_commitment"] = must("set_commitment", submit(
        s, calls.Commitments.set_commitment(netuid=NETUID, info=info), M))
    out["commitment_storage"] = s.query(("Commitments", "CommitmentOf"), [NETUID, M.ss58_address])
    axon = calls.SubtensorModule.serve_axon(netuid=NETUID, version=1, ip=0x0A000001, port=8091,
                                            ip_type=4, protocol=0, placeholder1=0, placeholder2=0)
    out["serve_axon"] = must("serve_axon", submit(s, axon, M))
    uids, values, salt = [0, 1], [6553, 65535], [1, 2, 3, 4, 5, 6, 7, 8]
    h = commit_hash(V, uids, values, salt, 0)
    out["commit_weights"] = must("commit_weights", submit(
        s, calls.SubtensorModule.commit_weights(netuid=NETUID, commit_hash=h), V))
    out["commit_again"] = submit(
        s, calls.SubtensorModule.commit_weights(netuid=NETUID, commit_hash="0x" + "ab" * 32), V)
    # Epochs run at multiples of the tempo; the reveal belongs to the epoch after the commit's.
    reveal_epoch = out["commit_weights"]["block"] // tempo + 1
    wait_for_block(s, reveal_epoch * tempo)
    reveal = calls.SubtensorModule.reveal_weights(netuid=NETUID, uids=uids, values=values,
                                                  salt=salt, version_key=0)
    out["reveal_weights"] = must("reveal_weights", submit(s, reveal, V))
    out["epoch_block"] = (reveal_epoch + 1) * tempo
    wait_for_block(s, out["epoch_block"])
    mg, out["neurons"] = neurons(s)
    out["metagraph_block"] = mg.block
    out["weights"] = weights_rows(s, len(out["neurons"]))
    return out


def set_weights(url):
    s = bt.Subtensor(url)
    out = {"validator": V.ss58_address}
    register_and_stake(s, out)
    sw = calls.SubtensorModule.set_weights(netuid=NETUID, dests=[0, 1], weights=[1, 3],
                                           version_key=0)
    out["set_weights"] = must("set_weights", submit(s, sw, V))
    out["set_weights_again"] = submit(s, sw, V)
    cr = calls.SubtensorModule.commit_weights(netuid=NETUID, commit_hash="0x" + "cd" * 32)
    out["commit_weights"] = submit(s, cr, V)
    _, out["neurons"] = neurons(s)
    out["weights"] = weights_rows(s, len(out["neurons"]))
    before = s.query(("System", "Account"), [BOB.ss58_address])["data"]["free"]
    t = calls.Balances.transfer_keep_alive(dest=BOB.ss58_address, value=10**9)
    out["transfer"] = must("transfer", submit(s, t, ALICE))
    after = s.query(("System", "Account"), [BOB.ss58_address])["data"]["free"]
    out["bob_received"] = int(after) - int(before)
    return out


def sn102_commit(url, text):
    s = bt.Subtensor(url)
    call = calls.SubtensorModule.burned_register(netuid=NETUID, hotkey=M.ss58_address)
    out = {"miner": M.ss58_address, "register": must("register", submit(s, call, ALICE))}
    data = text.encode()
    info = {"fields": [{f"Raw{len(data)}": "0x" + data.hex()}]}
    out["set_commitment"] = must("set_commitment", submit(
        s, calls.Commitments.set_commitment(netuid=NETUID, info=info), M))
    return out


if __name__ == "__main__":
    url, mode = sys.argv[1], sys.argv[2]
    if mode == "commit-reveal":
        result = commit_reveal(url, int(sys.argv[3]))
    elif mode == "sn102-commit":
        result = sn102_commit(url, sys.argv[3])
    else:
        result = set_weights(url)
    print(json.dumps(result, default=str))
