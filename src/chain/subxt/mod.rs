//! [`ChainClient`] over a Subtensor node's JSON-RPC, with subxt's dynamic API (no compile-time
//! metadata: the runtime's metadata is read from the node, so a runtime upgrade needs no rebuild).
//!
//! - **Finalized blocks** come from one `chain_subscribeFinalizedHeads` subscription kept by a
//!   background task; [`ChainClient::finalized_block`] costs no request.
//! - **Reads** are pinned to the block they name: runtime APIs where the node has them
//!   (`SubnetInfoRuntimeApi_get_metagraph`), storage otherwise.
//! - **Submissions** are signed with Subtensor's transaction extensions ([`Subtensor`]), with the
//!   nonce from `system_accountNextIndex` (which counts the pool) and a local counter, so
//!   concurrent senders of one hotkey never reuse a nonce; a stale-nonce refusal refetches and
//!   retries. The answer is "included at block N", Subtensor's error name, or — when the
//!   connection drops after sending — [`ChainError::OutcomeUnknown`].
//! - **Reconnects** lazily with exponential backoff (1 s to 30 s; a connection attempt times out
//!   after 15 s): a dropped socket, or one that brought no finalized block for 2 minutes, makes
//!   every call a transient [`ChainError::Connection`] until the node is back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use parity_scale_codec::{Compact, Encode};
use scale_info::PortableRegistry;
use subxt::config::transaction_extensions::{
    ChargeTransactionPayment, ChargeTransactionPaymentParams, CheckGenesis, CheckMetadataHash,
    CheckMortality, CheckMortalityParams, CheckNonce, CheckNonceParams, CheckSpecVersion,
    CheckTxVersion,
};
use subxt::config::{ClientState, Config, HashFor, SubstrateConfig, TransactionExtension};
use subxt::dynamic::Value;
use subxt::ext::frame_decode::extrinsics::{
    TransactionExtension as FdExt, TransactionExtensionError as FdErr,
};
use subxt::utils::{AccountId32, H256, MultiAddress, MultiSignature};
use subxt::{OnlineClient, rpcs::RpcClient};

use super::epoch_clock::{EpochClock, EpochState, Subnet};
use super::network::redact;
use super::weight_state::MORTAL_PERIOD;
use super::{
    Axon, BlockInfo, ChainClient, ChainError, CommitInfo, CommitmentRecord, Included, NeuronInfo,
    Reveal, WeightsParams, netuid_index,
};
use crate::submission::Hotkey;
use crate::tensors::Hash32;

mod decode;
pub use decode::{error_from_module, metagraph_from_value};

/// Subtensor's chain configuration for subxt: `SubstrateConfig`'s types, with the runtime's own
/// transaction extensions.
#[derive(Debug, Clone, Default)]
pub struct Subtensor(SubstrateConfig);

impl Config for Subtensor {
    type AccountId = AccountId32;
    type Address = MultiAddress<AccountId32, ()>;
    type Signature = MultiSignature;
    type Hasher = <SubstrateConfig as Config>::Hasher;
    type Header = <SubstrateConfig as Config>::Header;
    type AssetId = u32;
    type TransactionExtensions = Extensions;

    fn genesis_hash(&self) -> Option<HashFor<Self>> {
        self.0.genesis_hash()
    }
    fn metadata_for_spec_version(&self, v: u32) -> Option<subxt::metadata::ArcMetadata> {
        self.0.metadata_for_spec_version(v)
    }
    fn set_metadata_for_spec_version(&self, v: u32, m: subxt::metadata::ArcMetadata) {
        self.0.set_metadata_for_spec_version(v, m)
    }
    fn spec_and_transaction_version_for_block_number(&self, n: u64) -> Option<(u32, u32)> {
        self.0.spec_and_transaction_version_for_block_number(n)
    }
}

/// `ChargeTransactionPaymentWrapper` (newer Subtensor runtimes wrap the payment extension; the
/// value is still a compact tip). Spec 365 lists plain `ChargeTransactionPayment`; whichever
/// the node's metadata names is used.
pub struct PaymentWrapper(u128);

impl<T: Config> TransactionExtension<T> for PaymentWrapper {
    type Decoded = Value;
    type Params = ();
    fn new(_: &ClientState<T>, _: ()) -> Result<Self, subxt::error::TransactionExtensionError> {
        Ok(Self(0))
    }
}

impl FdExt<PortableRegistry> for PaymentWrapper {
    const NAME: &str = "ChargeTransactionPaymentWrapper";
    fn encode_value_to(
        &self,
        _: u32,
        _: &PortableRegistry,
        out: &mut Vec<u8>,
    ) -> Result<(), FdErr> {
        Compact(self.0).encode_to(out);
        Ok(())
    }
    fn encode_implicit_to(
        &self,
        _: u32,
        _: &PortableRegistry,
        _: &mut Vec<u8>,
    ) -> Result<(), FdErr> {
        Ok(())
    }
}

/// The extensions connito fills in. Subtensor's others (CheckNonZeroSender, CheckWeight,
/// SudoTransactionExtension, SubtensorTransactionExtension, DrandPriority) encode to no bytes,
/// which subxt skips; an extension the node lists that is neither is an encoding error.
pub type Extensions = (
    CheckSpecVersion,
    CheckTxVersion,
    CheckGenesis<Subtensor>,
    CheckMortality<Subtensor>,
    CheckNonce,
    ChargeTransactionPayment,
    PaymentWrapper,
    CheckMetadataHash,
);

type ExtParams = <Extensions as subxt::config::TransactionExtensions<Subtensor>>::Params;

fn ext_params(nonce: u64, at: &BlockInfo) -> ExtParams {
    (
        (),
        (),
        (),
        CheckMortalityParams::mortal_from_unchecked(MORTAL_PERIOD, at.number, H256(at.hash)),
        CheckNonceParams::with_nonce(nonce),
        ChargeTransactionPaymentParams::no_tip(),
        (),
        (),
    )
}

struct Signer<'a>(&'a Hotkey);

impl subxt::tx::Signer<Subtensor> for Signer<'_> {
    fn account_id(&self) -> AccountId32 {
        AccountId32(self.0.public())
    }
    fn sign(&self, payload: &[u8]) -> MultiSignature {
        MultiSignature::Sr25519(self.0.sign(payload))
    }
}

/// One live connection: the RPC client, subxt over it, the finalized head its subscription last
/// saw and when, and the subscription's task (stopped with the connection).
struct Conn {
    rpc: RpcClient,
    client: OnlineClient<Subtensor>,
    finalized: Arc<Mutex<(Option<BlockInfo>, Instant)>>,
    alive: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Backoff {
    failures: u32,
    next_try: Option<Instant>,
}

/// A Subtensor node over WebSocket JSON-RPC (see the module docs).
pub struct SubxtClient {
    url: String,
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
    backoff: Mutex<Backoff>,
    /// Next nonce per signing account, as this process has used them.
    nonces: tokio::sync::Mutex<HashMap<[u8; 32], u64>>,
    /// The last block reads were pinned to, and subxt's client at it.
    last_at: Mutex<Option<(Hash32, AtBlock)>>,
    /// How long a submission may wait for its block before its outcome counts as unknown.
    pub inclusion_timeout: Duration,
    /// A connection that has brought no new finalized block for this long is replaced.
    pub stale_after: Duration,
}

type AtBlock =
    subxt::client::ClientAtBlock<Subtensor, subxt::client::OnlineClientAtBlockImpl<Subtensor>>;

fn conn_err(e: impl std::fmt::Display) -> ChainError {
    ChainError::Connection(e.to_string())
}

/// A read's error: a decoding failure is final (the runtime is not what connito knows), anything
/// else is the connection's (transient).
fn read_err(e: impl std::fmt::Display) -> ChainError {
    let s = e.to_string();
    if s.contains("decod") || s.contains("Decod") {
        ChainError::Decode(s)
    } else {
        ChainError::Connection(s)
    }
}

impl SubxtClient {
    /// A client for `url` (`ws://` or `wss://`); it connects on first use.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_string(),
            conn: tokio::sync::Mutex::new(None),
            backoff: Mutex::new(Backoff::default()),
            nonces: tokio::sync::Mutex::new(HashMap::new()),
            last_at: Mutex::new(None),
            inclusion_timeout: Duration::from_secs(120),
            stale_after: Duration::from_secs(120),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn connect(&self) -> Result<Conn, ChainError> {
        let rpc = if super::network::is_loopback_url(&self.url) || self.url.starts_with("wss://") {
            RpcClient::from_url(&self.url).await
        } else {
            RpcClient::from_insecure_url(&self.url).await
        }
        .map_err(conn_err)?;
        let client = OnlineClient::<Subtensor>::from_rpc_client_with_config(
            Subtensor::default(),
            rpc.clone(),
        )
        .await
        .map_err(conn_err)?;
        let mut blocks = client.stream_blocks().await.map_err(conn_err)?;
        let finalized = Arc::new(Mutex::new((None, Instant::now())));
        let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (f, a) = (finalized.clone(), alive.clone());
        let task = tokio::spawn(async move {
            while let Some(Ok(b)) = blocks.next().await {
                let info = BlockInfo {
                    number: b.number(),
                    hash: b.hash().0,
                };
                *f.lock().expect("finalized lock") = (Some(info), Instant::now());
            }
            a.store(false, std::sync::atomic::Ordering::SeqCst);
        });
        Ok(Conn {
            rpc,
            client,
            finalized,
            alive,
            task,
        })
    }

    /// Whether `c` is usable: its head subscription is running and has brought a new finalized
    /// block within `stale_after` (a half-open socket brings nothing and errs nothing).
    fn usable(&self, c: &Conn) -> bool {
        let fresh = c.finalized.lock().expect("finalized lock").1.elapsed() < self.stale_after;
        if !fresh {
            c.alive.store(false, std::sync::atomic::Ordering::SeqCst);
        }
        c.alive.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The live connection, connecting (or reconnecting, with backoff) if there is none.
    async fn conn(&self) -> Result<Arc<Conn>, ChainError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            if self.usable(c) {
                return Ok(c.clone());
            }
            *guard = None;
            tracing::warn!(url = %redact(&self.url), "chain connection lost or silent; reconnecting");
        }
        {
            let b = self.backoff.lock().expect("backoff lock");
            if b.next_try.is_some_and(|t| Instant::now() < t) {
                return Err(ChainError::Connection(format!(
                    "{}: not connected (retrying after {} failures)",
                    redact(&self.url),
                    b.failures
                )));
            }
        }
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, self.connect()).await;
        let attempt = attempt.unwrap_or_else(|_| Err(conn_err("connecting timed out")));
        match attempt {
            Ok(c) => {
                *self.backoff.lock().expect("backoff lock") = Backoff::default();
                *self.last_at.lock().expect("at lock") = None; // pinned to the old connection
                self.nonces.lock().await.clear();
                let c = Arc::new(c);
                *guard = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                let mut b = self.backoff.lock().expect("backoff lock");
                b.failures += 1;
                let wait = Duration::from_secs(1 << (b.failures - 1).min(5)).min(MAX_BACKOFF);
                b.next_try = Some(Instant::now() + wait);
                Err(e)
            }
        }
    }

    /// A client pinned to `at`. The last one is reused (subxt asks the node for the runtime
    /// version of every block it pins), so the reads of one tick cost no extra request.
    async fn at(&self, at: &BlockInfo) -> Result<(Arc<Conn>, AtBlock), ChainError> {
        let c = self.conn().await?;
        if let Some((hash, block)) = self.last_at.lock().expect("at lock").as_ref()
            && *hash == at.hash
        {
            return Ok((c, block.clone()));
        }
        let block = c
            .client
            .at_block_hash_and_number(H256(at.hash), at.number)
            .await
            .map_err(read_err)?;
        *self.last_at.lock().expect("at lock") = Some((at.hash, block.clone()));
        Ok((c, block))
    }
}

/// The epoch clock a runtime runs: the stateful one (spec 423 onwards) iff `SubtensorModule`
/// has the storage item `SubnetEpochIndex`.
fn clock_of(has_subnet_epoch_index: bool) -> EpochClock {
    match has_subnet_epoch_index {
        true => EpochClock::Stateful,
        false => EpochClock::Legacy,
    }
}

/// The clock of the runtime at `block`, from its metadata (so a runtime upgrade is followed).
fn clock_at(block: &AtBlock) -> EpochClock {
    let has = block
        .metadata_ref()
        .pallet_by_name("SubtensorModule")
        .and_then(|p| p.storage())
        .and_then(|s| s.entry_by_name("SubnetEpochIndex"))
        .is_some();
    clock_of(has)
}

/// One `NetUid -> V` item of `SubtensorModule` at `block` (its default where unset).
async fn net_item<V: subxt::ext::scale_decode::DecodeAsType>(
    block: &AtBlock,
    name: &'static str,
    netuid: u16,
) -> Result<V, ChainError> {
    block
        .storage()
        .fetch(
            subxt::dynamic::storage::<(u16,), V>("SubtensorModule", name),
            (netuid,),
        )
        .await
        .map_err(read_err)?
        .decode()
        .map_err(read_err)
}

/// A subnet's epoch clock as read at block `head`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClockView {
    clock: EpochClock,
    subnet: Subnet,
    /// The stateful clock's storage at `head`; on the legacy clock only `last_epoch_block`
    /// (`LastMechansimStepBlock`) is read.
    state: EpochState,
    head: u64,
}

impl ClockView {
    /// Reads `Tempo` and the clock's items, concurrently: `LastEpochBlock`, `PendingEpochAt`,
    /// `SubnetEpochIndex` and `BlocksSinceLastStep` on the stateful clock,
    /// `LastMechansimStepBlock` on the legacy.
    async fn read(block: &AtBlock, netuid: u16, head: u64) -> Result<Self, ChainError> {
        let clock = clock_at(block);
        let tempo = net_item::<u16>(block, "Tempo", netuid);
        let (tempo, state) = match clock {
            EpochClock::Legacy => {
                let (tempo, last) = tokio::try_join!(
                    tempo,
                    net_item::<u64>(block, "LastMechansimStepBlock", netuid)
                )?;
                let state = EpochState {
                    last_epoch_block: last,
                    ..EpochState::default()
                };
                (tempo, state)
            }
            EpochClock::Stateful => {
                let (tempo, last, pending, index, since) = tokio::try_join!(
                    tempo,
                    net_item::<u64>(block, "LastEpochBlock", netuid),
                    net_item::<u64>(block, "PendingEpochAt", netuid),
                    net_item::<u64>(block, "SubnetEpochIndex", netuid),
                    net_item::<u64>(block, "BlocksSinceLastStep", netuid),
                )?;
                let state = EpochState {
                    last_epoch_block: last,
                    pending_epoch_at: pending,
                    epoch_index: index,
                    blocks_since_last_step: since,
                };
                (tempo, state)
            }
        };
        let subnet = Subnet {
            netuid,
            tempo: u64::from(tempo),
        };
        Ok(Self {
            clock,
            subnet,
            state,
            head,
        })
    }

    /// The epoch a transaction at `head` is in (the commit-reveal clock's index).
    fn epoch_index(&self) -> u64 {
        self.clock.epoch_index(&self.state, self.subnet, self.head)
    }
}

/// A `WeightCommits` row: `(hash, commit_epoch, commit_block, 0)` on the stateful clock,
/// `(hash, commit_block, first_reveal_block, last_reveal_block)` on the legacy.
type CommitRow = (H256, u64, u64, u64);

/// How a block's `WeightCommits` rows read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommitRows {
    /// The rows carry their reveal window.
    Legacy,
    /// The rows carry their commit epoch; the window is the blocks of epoch
    /// `commit_epoch + reveal_period_epochs` as the clock at the head places them.
    Stateful {
        view: ClockView,
        reveal_period_epochs: u64,
    },
}

impl CommitRows {
    /// One row as a [`CommitInfo`]; a stateful commit whose reveal epoch is over has the window
    /// `(0, 0)`: it has expired; one whose subnet never steps, or whose window lies past `u64`
    /// (a corrupt row), has `(u64::MAX, u64::MAX)`: never open.
    fn commit_info(&self, (hash, a, b, c): CommitRow) -> CommitInfo {
        let (commit_block, (first, last)) = match self {
            Self::Legacy => (a, (b, c)),
            Self::Stateful {
                view,
                reveal_period_epochs,
            } => {
                let reveal_epoch = a.saturating_add(*reveal_period_epochs);
                let window = (view.clock)
                    .epoch_blocks(&view.state, view.subnet, view.head, reveal_epoch)
                    .unwrap_or(
                        // Never stepping (tempo 0) the epoch never comes; past, it has expired.
                        match reveal_epoch >= view.epoch_index() || view.subnet.tempo == 0 {
                            true => (u64::MAX, u64::MAX),
                            false => (0, 0),
                        },
                    );
                (b, window)
            }
        };
        CommitInfo {
            hash: hash.0,
            commit_block,
            first_reveal_block: first,
            last_reveal_block: last,
        }
    }
}

mod submit;

#[path = "storage.rs"]
mod by_storage;

impl SubxtClient {
    /// The metagraph read from storage items only (what [`ChainClient::metagraph`] falls back to
    /// when the node's runtime lacks `SubnetInfoRuntimeApi_get_metagraph`).
    pub async fn metagraph_from_storage(
        &self,
        netuid: u16,
        at: &BlockInfo,
    ) -> Result<Vec<NeuronInfo>, ChainError> {
        let (_c, block) = self.at(at).await?;
        by_storage::metagraph(&block, netuid).await
    }
}

#[async_trait::async_trait]
impl ChainClient for SubxtClient {
    async fn finalized_block(&self) -> Result<BlockInfo, ChainError> {
        let c = self.conn().await?;
        let head = c.finalized.lock().expect("finalized lock").0;
        match head {
            Some(h) => Ok(h),
            None => {
                let at = c.client.at_current_block().await.map_err(conn_err)?;
                Ok(BlockInfo {
                    number: at.block_number(),
                    hash: at.block_hash().0,
                })
            }
        }
    }

    async fn block_hash(&self, number: u64) -> Result<Hash32, ChainError> {
        let c = self.conn().await?;
        let at = c.client.at_block(number).await.map_err(|e| {
            let s = e.to_string();
            if s.contains("not found") || s.contains("NotFound") {
                ChainError::UnknownBlock(number)
            } else {
                conn_err(s)
            }
        })?;
        Ok(at.block_hash().0)
    }

    async fn metagraph(&self, netuid: u16, at: &BlockInfo) -> Result<Vec<NeuronInfo>, ChainError> {
        let (_c, block) = self.at(at).await?;
        let has_api = block
            .metadata_ref()
            .runtime_api_trait_by_name("SubnetInfoRuntimeApi")
            .and_then(|t| t.method_by_name("get_metagraph"))
            .is_some();
        if !has_api {
            return by_storage::metagraph(&block, netuid).await;
        }
        let call = subxt::dynamic::runtime_api_call::<_, Value>(
            "SubnetInfoRuntimeApi",
            "get_metagraph",
            (netuid,),
        );
        let v = block.runtime_apis().call(call).await.map_err(read_err)?;
        metagraph_from_value(&v).ok_or(ChainError::SubnetworkDoesNotExist(netuid))?
    }

    async fn commitments(
        &self,
        netuid: u16,
        at: &BlockInfo,
    ) -> Result<Vec<CommitmentRecord>, ChainError> {
        let (_c, block) = self.at(at).await?;
        let storage = block.storage();
        let mut uids: HashMap<[u8; 32], u16> = HashMap::new();
        let keys = subxt::dynamic::storage::<(u16, u16), AccountId32>("SubtensorModule", "Keys");
        let mut it = storage.iter(&keys, (netuid,)).await.map_err(read_err)?;
        while let Some(kv) = it.next().await {
            let kv = kv.map_err(read_err)?;
            let (_, uid): (u16, u16) = kv.key().map_err(read_err)?.decode().map_err(read_err)?;
            let hotkey: AccountId32 = kv.value().decode().map_err(read_err)?;
            uids.insert(hotkey.0, uid);
        }
        let addr =
            subxt::dynamic::storage::<(u16, AccountId32), Value>("Commitments", "CommitmentOf");
        let mut out = vec![];
        let mut it = storage.iter(&addr, (netuid,)).await.map_err(read_err)?;
        while let Some(kv) = it.next().await {
            let kv = kv.map_err(read_err)?;
            let (_, who): (u16, AccountId32) =
                kv.key().map_err(read_err)?.decode().map_err(read_err)?;
            let value: Value = kv.value().decode().map_err(read_err)?;
            let Some(&uid) = uids.get(&who.0) else {
                continue; // a commitment of a hotkey no longer registered
            };
            if let Some((data, block)) = decode::commitment_from_value(&value) {
                out.push(CommitmentRecord {
                    uid,
                    hotkey: who.0,
                    data,
                    block,
                });
            }
        }
        out.sort_by_key(|r| r.uid);
        Ok(out)
    }

    async fn weights_params(
        &self,
        netuid: u16,
        at: &BlockInfo,
    ) -> Result<WeightsParams, ChainError> {
        let (_c, block) = self.at(at).await?;
        let (view, enabled, period, limit, key) = tokio::try_join!(
            ClockView::read(&block, netuid, at.number),
            net_item::<bool>(&block, "CommitRevealWeightsEnabled", netuid),
            net_item::<u64>(&block, "RevealPeriodEpochs", netuid),
            net_item::<u64>(&block, "WeightsSetRateLimit", netuid),
            net_item::<u64>(&block, "WeightsVersionKey", netuid),
        )?;
        Ok(WeightsParams {
            commit_reveal_enabled: enabled,
            reveal_period_epochs: period,
            tempo: view.subnet.tempo,
            weights_rate_limit: limit,
            version_key: key,
            epoch_index: view.epoch_index(),
            last_epoch_block: view.state.last_epoch_block,
        })
    }

    async fn weight_commits(
        &self,
        netuid: u16,
        hotkey: &[u8; 32],
        at: &BlockInfo,
    ) -> Result<Vec<CommitInfo>, ChainError> {
        let (_c, block) = self.at(at).await?;
        let addr = subxt::dynamic::storage::<(u16, AccountId32), Vec<CommitRow>>(
            "SubtensorModule",
            "WeightCommits",
        );
        let commits = async {
            let found = block
                .storage()
                .try_fetch(&addr, (netuid_index(netuid, 0), AccountId32(*hotkey)))
                .await
                .map_err(read_err)?;
            match found {
                Some(v) => v.decode().map_err(read_err),
                None => Ok(vec![]),
            }
        };
        // Legacy rows carry their reveal window; stateful rows need the clock to place it.
        let (commits, rows) = match clock_at(&block) {
            EpochClock::Legacy => (commits.await?, CommitRows::Legacy),
            EpochClock::Stateful => {
                let (commits, view, reveal_period_epochs) = tokio::try_join!(
                    commits,
                    ClockView::read(&block, netuid, at.number),
                    net_item::<u64>(&block, "RevealPeriodEpochs", netuid),
                )?;
                let rows = CommitRows::Stateful {
                    view,
                    reveal_period_epochs,
                };
                (commits, rows)
            }
        };
        Ok(commits.into_iter().map(|r| rows.commit_info(r)).collect())
    }

    async fn weights(
        &self,
        netuid: u16,
        uid: u16,
        at: &BlockInfo,
    ) -> Result<Vec<(u16, u16)>, ChainError> {
        let (_c, block) = self.at(at).await?;
        let addr =
            subxt::dynamic::storage::<(u16, u16), Vec<(u16, u16)>>("SubtensorModule", "Weights");
        block
            .storage()
            .fetch(&addr, (netuid_index(netuid, 0), uid))
            .await
            .map_err(read_err)?
            .decode()
            .map_err(read_err)
    }

    async fn set_commitment(
        &self,
        signer: &Hotkey,
        netuid: u16,
        data: Vec<u8>,
    ) -> Result<Included, ChainError> {
        self.submit(signer, submit::set_commitment(netuid, &data)?)
            .await
    }

    async fn set_weights(
        &self,
        signer: &Hotkey,
        netuid: u16,
        uids: Vec<u16>,
        values: Vec<u16>,
        version_key: u64,
    ) -> Result<Included, ChainError> {
        let call = subxt::dynamic::tx(
            "SubtensorModule",
            "set_weights",
            (netuid, uids, values, version_key),
        );
        self.submit(signer, call).await
    }

    async fn commit_weights(
        &self,
        signer: &Hotkey,
        netuid: u16,
        commit_hash: [u8; 32],
    ) -> Result<Included, ChainError> {
        let call = subxt::dynamic::tx(
            "SubtensorModule",
            "commit_weights",
            (netuid, H256(commit_hash)),
        );
        self.submit(signer, call).await
    }

    async fn reveal_weights(
        &self,
        signer: &Hotkey,
        netuid: u16,
        reveal: Reveal,
    ) -> Result<Included, ChainError> {
        let call = subxt::dynamic::tx(
            "SubtensorModule",
            "reveal_weights",
            (
                netuid,
                reveal.uids,
                reveal.values,
                reveal.salt,
                reveal.version_key,
            ),
        );
        self.submit(signer, call).await
    }

    async fn serve_axon(
        &self,
        signer: &Hotkey,
        netuid: u16,
        axon: Axon,
    ) -> Result<Included, ChainError> {
        let call = subxt::dynamic::tx(
            "SubtensorModule",
            "serve_axon",
            (
                netuid,
                axon.version,
                axon.ip,
                axon.port,
                axon.ip_type,
                axon.protocol,
                axon.placeholder1,
                axon.placeholder2,
            ),
        );
        self.submit(signer, call).await
    }
}

#[cfg(test)]
mod clock_tests;
#[cfg(test)]
mod golden_tests;
