"""Connects the official bittensor SDK to a running `connito devnet` and prints what it read as
one JSON line. Usage: python connect.py ws://127.0.0.1:PORT"""
import json
import sys

import bittensor as bt

s = bt.Subtensor(sys.argv[1])
out = {
    "block": s.block,
    "spec_version": s.spec_version,
    "tempo": s.query(("SubtensorModule", "Tempo"), [102]),
    "subnetwork_n": s.query(("SubtensorModule", "SubnetworkN"), [102]),
    "networks_added": s.query(("SubtensorModule", "NetworksAdded"), [102]),
    "neurons": len(s.neurons.all(102)),
}
mg = s.subnets.metagraph(102)
out["metagraph"] = {
    "num_uids": mg.num_uids,
    "neurons": len(mg.neurons),
    "block": mg.block,
    "tempo": mg.tempo,
    "name": mg.name,
}
if s.spec_version >= 423:
    # The stateful epoch clock: storage items and the chain-computed next epoch.
    out["epoch_index"] = s.query(("SubtensorModule", "SubnetEpochIndex"), [102])
    out["last_epoch_block"] = s.query(("SubtensorModule", "LastEpochBlock"), [102])
    out["pending_epoch_at"] = s.query(("SubtensorModule", "PendingEpochAt"), [102])
    out["epoch_status"] = s.epochs.epoch_status(102)
out["drand_last_round"] = s.query(("Drand", "LastStoredRound"), [])
print(json.dumps(out, default=str))
