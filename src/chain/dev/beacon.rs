//! The dev chain's drand beacon: `pallet_drand`'s storage as the pallet keeps it, with pulses of
//! devnet's own BLS key (quicknet's scheme and round numbering, so a round is the same instant
//! on devnet as on quicknet).
//!
//! The key derives from the chain's secret salt (persisted with its state), so a restarted
//! devnet signs with the same key and no one else can sign its rounds. As wall-clock time passes
//! (the time of each block is an argument of [`DevChain::produce_block_at`]), each block stores
//! the rounds whose time has come, at most [`MAX_PULSES_PER_BLOCK`] (the pallet's
//! `MAX_PULSES_TO_FETCH`), starting from the current round on a new chain; the oldest are pruned
//! past [`KEPT_PULSES`] (the pallet keeps a week; devnet an hour, so its storage stays small).
//! Pulses are a function of the key and the round, so the state keeps only the round range and
//! the pulses themselves are recomputed when needed.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::chain::drand::{Beacon, BeaconConfiguration, Pulse, Schedule};
use crate::tensors::blake2b_256;

/// Rounds stored per block at most (`pallet_drand`'s `MAX_PULSES_TO_FETCH`).
pub const MAX_PULSES_PER_BLOCK: u64 = 50;
/// Pulses kept (an hour of quicknet's 3 s rounds).
pub const KEPT_PULSES: u64 = 1200;
/// `metadata.beacon_id` of devnet's beacon.
pub const BEACON_ID: &str = "connito-devnet";

/// `Drand.LastStoredRound` and `Drand.OldestStoredRound` (0 and 0: none yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DrandRounds {
    pub last_stored_round: u64,
    pub oldest_stored_round: u64,
}

impl DrandRounds {
    /// The rounds a block at `now_round` (the newest round whose time has come) stores: from
    /// the round after the last stored (a new chain starts at `now_round`), at most
    /// [`MAX_PULSES_PER_BLOCK`]; empty when none is due.
    pub fn due(&self, now_round: u64) -> RangeInclusive<u64> {
        let from = match self.last_stored_round {
            0 => now_round.max(1),
            last => last + 1,
        };
        let to = now_round.min(from.saturating_add(MAX_PULSES_PER_BLOCK - 1));
        from..=to
    }

    /// Records the rounds stored by a block (as `write_pulse` then `prune_old_pulses`).
    pub fn store(&mut self, rounds: RangeInclusive<u64>) {
        if rounds.is_empty() {
            return;
        }
        if self.oldest_stored_round == 0 {
            self.oldest_stored_round = *rounds.start();
        }
        self.last_stored_round = *rounds.end();
        let keep_from = (self.last_stored_round + 1).saturating_sub(KEPT_PULSES);
        self.oldest_stored_round = self.oldest_stored_round.max(keep_from);
    }

    /// The rounds in storage (none while `last_stored_round` is 0).
    pub fn stored(&self) -> RangeInclusive<u64> {
        self.oldest_stored_round.max(1)..=self.last_stored_round
    }
}

/// Devnet's beacon and the pulses computed so far.
pub(super) struct DevBeacon {
    beacon: Beacon,
    pulses: Mutex<BTreeMap<u64, Pulse>>,
}

impl DevBeacon {
    /// The beacon of a chain with this salt.
    pub(super) fn of_salt(salt: &[u8; 32]) -> Self {
        let seed = blake2b_256(&[b"connito devnet drand beacon".as_slice(), salt].concat());
        Self {
            beacon: Beacon::from_seed(&seed),
            pulses: Mutex::default(),
        }
    }

    pub(super) fn public_key(&self) -> [u8; 96] {
        self.beacon.public_key()
    }

    /// `Drand.BeaconConfig`: devnet's key on quicknet's schedule.
    pub(super) fn configuration(&self) -> BeaconConfiguration {
        (self.beacon)
            .configuration(Schedule::QUICKNET, BEACON_ID)
            .expect("quicknet's schedule and a short beacon id")
    }

    /// The pulses of `rounds` (computed once each, kept while stored).
    pub(super) fn pulses(&self, rounds: RangeInclusive<u64>) -> Vec<Pulse> {
        let mut memo = self.pulses.lock().expect("pulse memo");
        memo.retain(|r, _| rounds.contains(r));
        rounds
            .map(|r| *memo.entry(r).or_insert_with(|| self.beacon.pulse(r)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::drand::{round_at, verify};

    #[test]
    fn a_new_chain_starts_at_the_current_round_and_then_stores_each_due_round() {
        let mut d = DrandRounds::default();
        // (now_round, rounds due, last stored, oldest stored) block after block.
        let steps: &[(u64, (u64, u64), u64, u64)] = &[
            (1000, (1000, 1000), 1000, 1000),
            (1000, (1001, 1000), 1000, 1000),
            (1003, (1001, 1003), 1003, 1000),
            // 200 rounds behind: caught up 50 per block.
            (1203, (1004, 1053), 1053, 1000),
            (1203, (1054, 1103), 1103, 1000),
        ];
        for &(now, (from, to), last, oldest) in steps {
            let due = d.due(now);
            assert_eq!((*due.start(), *due.end()), (from, to), "now {now}");
            d.store(due);
            assert_eq!((d.last_stored_round, d.oldest_stored_round), (last, oldest));
        }
    }

    #[test]
    fn pulses_past_the_kept_number_are_pruned() {
        let mut d = DrandRounds {
            last_stored_round: 5000,
            oldest_stored_round: 3801,
        };
        assert_eq!(d.stored().count() as u64, KEPT_PULSES);
        d.store(5001..=5010);
        assert_eq!(d.stored(), 3811..=5010);
        assert_eq!(DrandRounds::default().stored().count(), 0);
    }

    #[test]
    fn devnet_pulses_verify_against_its_key_and_the_key_follows_the_salt() {
        let b = DevBeacon::of_salt(&[7; 32]);
        let round = round_at(1_765_000_000);
        for p in b.pulses(round..=round + 2) {
            p.verify(&b.public_key()).unwrap();
            verify(&b.configuration().public_key, p.round, &p.signature).unwrap();
        }
        assert_eq!(b.public_key(), DevBeacon::of_salt(&[7; 32]).public_key());
        assert_ne!(b.public_key(), DevBeacon::of_salt(&[8; 32]).public_key());
    }

    /// Reads a storage item of the chain's snapshot and decodes it.
    fn read<T: parity_scale_codec::Decode>(
        c: &crate::chain::DevChain,
        item: &str,
        key: &[u8],
    ) -> Option<T> {
        use crate::chain::substrate::hashing::{blake2_128, storage_prefix};
        let mut k = storage_prefix("Drand", item).to_vec();
        if !key.is_empty() {
            k.extend(blake2_128(key));
            k.extend(key);
        }
        let bytes = c.storage_snapshot().get(&k)?.clone();
        Some(T::decode(&mut &bytes[..]).expect("decodes"))
    }

    #[test]
    fn the_chain_stores_the_rounds_as_time_passes_and_its_pulses_verify_against_its_beacon_config()
    {
        use parity_scale_codec::Encode;
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("chain")).unwrap();
        let c = crate::chain::DevChain::open(Default::default(), store, 1, 0).unwrap();
        let t0 = 1_765_000_000;
        // No clock, no round; then a block every 2 s for 10 blocks: one round per 3 s.
        c.produce_block().unwrap();
        assert_eq!(read::<u64>(&c, "LastStoredRound", &[]), Some(0));
        for i in 0..10 {
            c.produce_block_at(t0 + 2 * i).unwrap();
        }
        let (first, last) = (round_at(t0), round_at(t0 + 18));
        assert_eq!(last - first, 6);
        assert_eq!(read::<u64>(&c, "LastStoredRound", &[]), Some(last));
        assert_eq!(read::<u64>(&c, "OldestStoredRound", &[]), Some(first));
        let config: BeaconConfiguration = read(&c, "BeaconConfig", &[]).unwrap();
        assert_eq!(config.public_key, c.drand_public_key());
        assert_eq!(config.period, 3);
        for r in first..=last {
            let p: Pulse = read(&c, "Pulses", &r.encode()).unwrap();
            assert_eq!(p.round, r);
            // The pairing check against the key the chain publishes.
            verify(&config.public_key, r, &p.signature).unwrap();
            p.verify(&config.public_key).unwrap();
        }
        assert!(read::<Pulse>(&c, "Pulses", &(first - 1).encode()).is_none());
        assert!(read::<Pulse>(&c, "Pulses", &(last + 1).encode()).is_none());
        // A restart signs with the same key and continues after the last stored round.
        let key = c.drand_public_key();
        drop(c);
        let store = crate::chain::dev::tests::reopen(&dir.path().join("chain"));
        let c = crate::chain::DevChain::open(Default::default(), store, 1, 0).unwrap();
        assert_eq!(c.drand_public_key(), key);
        c.produce_block_at(t0 + 30).unwrap();
        assert_eq!(
            read::<u64>(&c, "LastStoredRound", &[]),
            Some(round_at(t0 + 30))
        );
        assert_eq!(read::<u64>(&c, "OldestStoredRound", &[]), Some(first));
    }
}
