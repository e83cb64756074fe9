//! Devnet's transaction pool and extrinsic execution: accounts (nonce, free balance), the checks
//! a node makes at submission (format, birth block, signature, nonce), execution in the next
//! block with `System.Events`, and the bodies of recent blocks.
//!
//! Like a node, devnet accepts an extrinsic into the pool only if it is valid now; unlike one it
//! keeps no "future" queue: a nonce past the next one is refused as `Future`. Every extrinsic in
//! the pool goes into the next block (no block limits); the nonce is used even when the call
//! fails, as on chain. No fees are charged.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::super::ChainError;
use super::{BLOCK_HASH_COUNT, DevChain, State};
use crate::chain::dev::calls::{CommitmentField, DevCall, decode_call};
use crate::chain::dev::static_api::RuntimeVersion;
use crate::chain::substrate::dispatch::{
    Applied, DispatchError, Event, encode_block_events, encode_events,
};
use crate::chain::substrate::extrinsic::{
    self, ExtrinsicError, InvalidTransaction, Signed, SigningContext,
};
use crate::chain::substrate::metadata::ChainMetadata;
use crate::store::Store;
use crate::store::tables::DEV_BLOCKS as BODIES;
use crate::tensors::Hash32;

/// Free balance of each development account at genesis: 1,000,000 TAO (in rao).
pub const DEV_ENDOWMENT: u64 = 1_000_000 * 1_000_000_000;

const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not lowercase hex"),
    }
}

/// The well-known development accounts (`//Alice` … `//Ferdie`, sr25519 from Substrate's dev
/// phrase), funded with [`DEV_ENDOWMENT`] at genesis.
pub const DEV_ACCOUNTS: [(&str, [u8; 32]); 6] = [
    (
        "Alice",
        hex32("d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"),
    ),
    (
        "Bob",
        hex32("8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48"),
    ),
    (
        "Charlie",
        hex32("90b5ab205c6974c9ea841be688864633dc9ca8a357843eeacf2314649965fe22"),
    ),
    (
        "Dave",
        hex32("306721211d5404bd9da88e0204360a1a9ab8b87c66c1bc2fcdd37f3c2222cc20"),
    ),
    (
        "Eve",
        hex32("e659a7a1628cdd93febc04a4e0646ea20e9f5f0ce097d9a05290d4a9e054df4e"),
    ),
    (
        "Ferdie",
        hex32("1cbd2d43530a44705ad088af313e18f80b53ef16b36177cd4b77b846f2a5f07c"),
    ),
];

/// Extrinsics the pool holds at most (more are refused as `ExhaustsResources`).
pub const MAX_POOL: usize = 8192;
const RAO_PER_TAO: f64 = 1e9;

/// An account's nonce and free balance (rao).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub nonce: u32,
    pub free: u64,
}

struct PoolEntry {
    bytes: Vec<u8>,
    hash: Hash32,
    signer: [u8; 32],
    nonce: u32,
    call: DevCall,
}

/// Extrinsics accepted for the next block, in arrival order.
#[derive(Default)]
pub struct Pool {
    entries: Vec<PoolEntry>,
}

/// A block's extrinsics (as submitted) and its `System.Events` value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockBody {
    pub extrinsics: Vec<Vec<u8>>,
    pub events: Vec<u8>,
}

/// The bodies of the last [`BLOCK_HASH_COUNT`] blocks up to `best` kept in `store`. A body past
/// `best` (written just before a crash that lost its block) is deleted: that block will be
/// sealed again.
pub(super) fn load_bodies(
    store: &Store,
    best: u64,
) -> Result<BTreeMap<u64, BlockBody>, ChainError> {
    let storage = |e: crate::store::StoreError| ChainError::Storage(e.to_string());
    let from = best.saturating_sub(BLOCK_HASH_COUNT);
    let rows = store
        .range(&BODIES, &[from], &[u64::MAX])
        .map_err(storage)?;
    let mut out = BTreeMap::new();
    for (number, b) in rows {
        if number > best {
            store.remove(&BODIES, &number).map_err(storage)?;
        } else {
            out.insert(number, b);
        }
    }
    Ok(out)
}

fn genesis_balance(who: &[u8; 32]) -> u64 {
    if DEV_ACCOUNTS.iter().any(|(_, k)| k == who) {
        DEV_ENDOWMENT
    } else {
        0
    }
}

/// `Balances.ExistentialDeposit` of finney's runtime.
fn existential_deposit() -> u64 {
    static ED: OnceLock<u64> = OnceLock::new();
    *ED.get_or_init(|| {
        ChainMetadata::finney()
            .constant("Balances", "ExistentialDeposit")
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .expect("finney has a u64 ExistentialDeposit")
    })
}

fn runtime_version(runtime: super::DevRuntime) -> RuntimeVersion {
    RuntimeVersion::from_metadata(runtime.metadata()).expect("the served version decodes")
}

/// Subtensor's `is_valid_ip_address` (zero, broadcast and localhost are refused).
pub(super) fn valid_ip(ip_type: u8, ip: u128) -> bool {
    match ip_type {
        4 => ip != 0 && ip < u128::from(u32::MAX) && ip != 0x7f00_0001,
        6 => ip != 0 && ip != u128::MAX && ip != 1,
        _ => false,
    }
}

impl DevChain {
    pub(super) fn account(st: &State, who: &[u8; 32]) -> Account {
        st.accounts
            .get(&hex::encode(who))
            .copied()
            .unwrap_or(Account {
                nonce: 0,
                free: genesis_balance(who),
            })
    }

    fn set_account(st: &mut State, who: &[u8; 32], a: Account) {
        st.accounts.insert(hex::encode(who), a);
    }

    /// Sets the free balance of `who` (a genesis endowment beyond the development accounts).
    pub fn endow(&self, who: &[u8; 32], free: u64) -> Result<(), ChainError> {
        self.with_state(|st| {
            let a = Self::account(st, who);
            Self::set_account(st, who, Account { free, ..a });
            Ok(())
        })
    }

    /// Every account with a nonce or a balance: the development accounts and every account
    /// that signed or received something.
    pub fn accounts(&self) -> Vec<([u8; 32], Account)> {
        Self::accounts_of(&self.state.lock().expect("chain lock"))
    }

    pub(super) fn accounts_of(st: &State) -> Vec<([u8; 32], Account)> {
        let mut keys: Vec<[u8; 32]> = DEV_ACCOUNTS.iter().map(|(_, k)| *k).collect();
        for k in st.accounts.keys() {
            if let Some(k) = hex::decode(k).ok().and_then(|b| b.try_into().ok()) {
                keys.push(k);
            }
        }
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .map(|k| (k, Self::account(st, &k)))
            .collect()
    }

    /// The nonce the next extrinsic of `who` must carry (`system_accountNextIndex`): its
    /// account nonce plus its extrinsics waiting in the pool.
    pub fn next_index(&self, who: &[u8; 32]) -> u32 {
        let pool = self.pool.lock().expect("pool lock");
        let st = self.state.lock().expect("chain lock");
        Self::account(&st, who)
            .nonce
            .saturating_add(Self::pending(&pool, who))
    }

    fn pending(pool: &Pool, who: &[u8; 32]) -> u32 {
        pool.entries.iter().filter(|e| &e.signer == who).count() as u32
    }

    /// What signatures cover on this chain: its runtime's versions and its genesis.
    pub fn signing_context(&self) -> SigningContext {
        let salt = self.state.lock().expect("chain lock").salt();
        self.context_of(&salt)
    }

    fn context_of(&self, salt: &super::Salt) -> SigningContext {
        let v = runtime_version(self.cfg.runtime);
        SigningContext {
            spec_version: v.spec_version,
            transaction_version: v.transaction_version,
            genesis: Self::hash_of(salt, 0),
        }
    }

    /// Checks an extrinsic as a node does at submission and puts it in the pool for the next
    /// block; returns its hash.
    pub fn submit_extrinsic(&self, bytes: &[u8]) -> Result<Hash32, ExtrinsicError> {
        let x = extrinsic::decode(bytes)?;
        let call = decode_call(&x.call)?;
        let Some(signed) = x.signed else {
            return Err(ExtrinsicError::Unknown(
                "Could not find an unsigned validator for the unsigned transaction".into(),
            ));
        };
        let mut pool = self.pool.lock().expect("pool lock");
        let st = self.state.lock().expect("chain lock");
        self.check_signature(&st, &x.call, &signed)?;
        let hash = extrinsic::extrinsic_hash(bytes);
        if pool.entries.iter().any(|e| e.hash == hash) {
            return Err(ExtrinsicError::AlreadyImported);
        }
        let next = Self::account(&st, &signed.signer).nonce;
        let expected = next.saturating_add(Self::pending(&pool, &signed.signer));
        match signed.nonce {
            n if n < next => return Err(ExtrinsicError::Invalid(InvalidTransaction::Stale)),
            n if n < expected => return Err(ExtrinsicError::TooLowPriority),
            n if n > expected || n == u32::MAX => {
                return Err(ExtrinsicError::Invalid(InvalidTransaction::Future));
            }
            _ => {}
        }
        if pool.entries.len() >= MAX_POOL {
            return Err(ExtrinsicError::Invalid(
                InvalidTransaction::ExhaustsResources,
            ));
        }
        pool.entries.push(PoolEntry {
            bytes: bytes.to_vec(),
            hash,
            signer: signed.signer,
            nonce: signed.nonce,
            call,
        });
        Ok(hash)
    }

    /// `CheckMortality`'s birth block (seen from the block being built), then the signature.
    fn check_signature(&self, st: &State, call: &[u8], s: &Signed) -> Result<(), ExtrinsicError> {
        let birth = s.era.birth(st.block + 1);
        let oldest = st.block.saturating_sub(BLOCK_HASH_COUNT - 1);
        if birth > st.block || (birth != 0 && birth < oldest) {
            return Err(ExtrinsicError::Invalid(
                InvalidTransaction::AncientBirthBlock,
            ));
        }
        let salt = st.salt();
        let birth_hash = Self::hash_of(&salt, birth);
        if !extrinsic::signature_ok(call, s, &self.context_of(&salt), &birth_hash) {
            return Err(ExtrinsicError::Invalid(InvalidTransaction::BadProof));
        }
        Ok(())
    }

    /// Applies the pool to the block being built; returns its body.
    pub(super) fn apply_pool(&self, st: &mut State, pool: &mut Pool) -> BlockBody {
        let mut body = BlockBody::default();
        let mut applied: Vec<Applied> = vec![];
        for e in std::mem::take(&mut pool.entries) {
            let mut account = Self::account(st, &e.signer);
            if account.nonce != e.nonce {
                continue; // cannot happen: the pool admits the next nonce only
            }
            account.nonce += 1;
            Self::set_account(st, &e.signer, account);
            applied.push(match self.dispatch(st, e.signer, e.call) {
                Ok(events) => (Ok(()), events),
                Err(err) => {
                    tracing::debug!("devnet: extrinsic {} failed: {err}", hex::encode(e.hash));
                    (Err(DispatchError::from(&err)), vec![])
                }
            });
            body.extrinsics.push(e.bytes);
        }
        body.events = encode_block_events(&applied);
        body
    }

    /// Executes a call; the events it emits (besides `System.ExtrinsicSuccess`).
    fn dispatch(
        &self,
        st: &mut State,
        signer: [u8; 32],
        call: DevCall,
    ) -> Result<Vec<Event>, ChainError> {
        let done = match call {
            DevCall::Transfer {
                dest,
                value,
                keep_alive,
            } => return Self::transfer(st, signer, dest, value, keep_alive),
            DevCall::BurnedRegister { netuid, hotkey } => {
                self.burned_register(st, signer, netuid, hotkey)
            }
            DevCall::AddStake {
                hotkey,
                netuid,
                amount,
            } => self.add_stake_rao(st, signer, hotkey, netuid, amount),
            DevCall::ServeAxon { netuid, axon } => self.serve_axon_in(st, signer, netuid, axon),
            DevCall::SetWeights {
                netuid,
                dests,
                weights,
                version_key,
            } => self.set_weights_in(st, signer, netuid, dests, weights, version_key),
            DevCall::CommitWeights { netuid, hash } => {
                self.commit_weights_in(st, signer, netuid, hash)
            }
            DevCall::RevealWeights { netuid, reveal } => {
                self.reveal_weights_in(st, signer, netuid, reveal)
            }
            DevCall::SetCommitment { netuid, fields } => {
                let data = match fields.as_slice() {
                    [] => vec![],
                    [CommitmentField::Raw(d)] => d.clone(),
                    [CommitmentField::Other(tag)] => {
                        return Err(ChainError::Unsupported(format!(
                            "commitment Data variant {tag}: devnet stores Raw data only"
                        )));
                    }
                    many => return Err(ChainError::TooManyFieldsInCommitmentInfo(many.len())),
                };
                self.set_commitment_in(st, signer, netuid, data)
            }
        };
        done.map(|()| Vec::new())
    }

    /// A balance transfer; its `Balances.Transfer` event when something moved.
    fn transfer(
        st: &mut State,
        from: [u8; 32],
        dest: Option<[u8; 32]>,
        value: u64,
        keep_alive: bool,
    ) -> Result<Vec<Event>, ChainError> {
        let dest = dest.ok_or(ChainError::CannotLookup)?;
        if value == 0 {
            return Ok(vec![]); // as on chain: nothing moves, nothing is checked
        }
        let ed = existential_deposit();
        let mut a = Self::account(st, &from);
        if a.free < value {
            return Err(ChainError::FundsUnavailable);
        }
        if keep_alive && a.free - value < ed {
            return Err(ChainError::NotExpendable);
        }
        if from == dest {
            return Ok(vec![]);
        }
        let mut b = Self::account(st, &dest);
        if b.free.saturating_add(value) < ed {
            return Err(ChainError::BelowMinimum);
        }
        a.free -= value;
        b.free = b.free.saturating_add(value);
        Self::set_account(st, &from, a);
        Self::set_account(st, &dest, b);
        Ok(vec![Event::Transfer {
            from,
            to: dest,
            amount: value,
        }])
    }

    fn burned_register(
        &self,
        st: &mut State,
        coldkey: [u8; 32],
        netuid: u16,
        hotkey: [u8; 32],
    ) -> Result<(), ChainError> {
        self.check_netuid(netuid)?;
        if st.neurons.iter().any(|n| n.hotkey == hotkey) {
            return Err(ChainError::HotKeyAlreadyRegisteredInSubNet);
        }
        let mut a = Self::account(st, &coldkey);
        if a.free < self.cfg.burn {
            return Err(ChainError::NotEnoughBalanceToStake);
        }
        self.register_in(st, hotkey, Some(coldkey), netuid)?;
        a.free -= self.cfg.burn;
        Self::set_account(st, &coldkey, a);
        Ok(())
    }

    /// `add_stake` from a coldkey's free balance; one TAO staked is one unit of stake.
    fn add_stake_rao(
        &self,
        st: &mut State,
        coldkey: [u8; 32],
        hotkey: [u8; 32],
        netuid: u16,
        amount: u64,
    ) -> Result<(), ChainError> {
        self.check_netuid(netuid)?;
        if amount == 0 {
            return Err(ChainError::AmountTooLow);
        }
        let uid = Self::uid_of(st, &hotkey).map_err(|_| ChainError::HotKeyAccountNotExists)?;
        let mut a = Self::account(st, &coldkey);
        if a.free < amount {
            return Err(ChainError::NotEnoughBalanceToStake);
        }
        a.free -= amount;
        Self::set_account(st, &coldkey, a);
        st.neurons[usize::from(uid)].stake += amount as f64 / RAO_PER_TAO;
        Ok(())
    }

    /// Keeps a block's body (blocks without extrinsics have none) and forgets the one that
    /// falls out of the last [`BLOCK_HASH_COUNT`].
    pub(super) fn keep_body(&self, number: u64, body: BlockBody) -> Result<(), ChainError> {
        let storage = |e: crate::store::StoreError| ChainError::Storage(e.to_string());
        let old = number.checked_sub(BLOCK_HASH_COUNT);
        let mut bodies = self.bodies.lock().expect("bodies lock");
        if let Some(store) = &self.store {
            if body.extrinsics.is_empty() {
                store.remove(&BODIES, &number).map_err(storage)?;
            } else {
                store.put(&BODIES, &number, &body).map_err(storage)?;
            }
            if let Some(old) = old {
                store.remove(&BODIES, &old).map_err(storage)?;
            }
        }
        if let Some(old) = old {
            bodies.remove(&old);
        }
        if !body.extrinsics.is_empty() {
            bodies.insert(number, body);
        }
        Ok(())
    }

    /// Block `number`'s body (empty for a block without extrinsics or one not kept).
    pub fn block_body(&self, number: u64) -> BlockBody {
        let bodies = self.bodies.lock().expect("bodies lock");
        bodies.get(&number).cloned().unwrap_or_else(|| BlockBody {
            extrinsics: vec![],
            events: encode_events(&[]),
        })
    }
}

#[cfg(test)]
#[path = "extrinsics_tests.rs"]
mod tests;
