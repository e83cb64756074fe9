//! Runtime APIs over the dev chain's state, encoded with finney's types (spec 365): [`METHODS`]. The field order of each struct below is the metadata's
//! (`src/chain/dev/rpc_tests.rs` checks every answer against the metadata's output type).
//!
//! What the dev chain does not model is encoded as a node with no such data would: coldkey =
//! hotkey for a uid registered in-process (no coldkey known), no prometheus info, no subnet identity, zero rank, trust, pruning score and
//! pool emissions. Stake and emission are in rao (the dev chain's units × 1e9).

use parity_scale_codec::{Compact, Decode, Encode};

use super::super::Axon as AxonInfo;
use super::node::{saturating_u16, u16_proportion};
use super::{DevChain, Neuron, State};
use crate::chain::dev::static_api::RuntimeCallError;

type AccountId = [u8; 32];

#[derive(Encode, Default)]
struct PrometheusInfo {
    block: u64,
    version: u32,
    ip: u128,
    port: u16,
    ip_type: u8,
}

#[derive(Encode)]
struct NeuronInfoLite {
    hotkey: AccountId,
    coldkey: AccountId,
    uid: Compact<u16>,
    netuid: Compact<u16>,
    active: bool,
    axon_info: AxonInfo,
    prometheus_info: PrometheusInfo,
    stake: Vec<(AccountId, Compact<u64>)>,
    rank: Compact<u16>,
    emission: Compact<u64>,
    incentive: Compact<u16>,
    consensus: Compact<u16>,
    trust: Compact<u16>,
    validator_trust: Compact<u16>,
    dividends: Compact<u16>,
    last_update: Compact<u64>,
    validator_permit: bool,
    pruning_score: Compact<u16>,
}

/// Dev-chain units in rao.
pub(super) fn rao(x: f64) -> u64 {
    (x.max(0.0) * 1e9).floor() as u64
}

fn neuron_lite(netuid: u16, uid: usize, n: &Neuron) -> NeuronInfoLite {
    NeuronInfoLite {
        hotkey: n.hotkey,
        coldkey: n.coldkey(),
        uid: Compact(uid as u16),
        netuid: Compact(netuid),
        active: n.active,
        axon_info: n.axon.unwrap_or_default(),
        prometheus_info: PrometheusInfo::default(),
        stake: vec![(n.coldkey(), Compact(rao(n.stake)))],
        rank: Compact(0),
        emission: Compact(rao(n.emission)),
        incentive: Compact(u16_proportion(n.incentive)),
        consensus: Compact(u16_proportion(n.consensus)),
        trust: Compact(0),
        validator_trust: Compact(u16_proportion(n.validator_trust)),
        dividends: Compact(u16_proportion(n.dividends)),
        last_update: Compact(n.last_update),
        validator_permit: n.validator_permit,
        pruning_score: Compact(0),
    }
}

/// `pallet_subtensor::rpc_info::metagraph::Metagraph`, field for field.
#[derive(Encode)]
struct Metagraph {
    netuid: Compact<u16>,
    name: Vec<Compact<u8>>,
    symbol: Vec<Compact<u8>>,
    identity: Option<()>,
    network_registered_at: Compact<u64>,
    owner_hotkey: AccountId,
    owner_coldkey: AccountId,
    block: Compact<u64>,
    tempo: Compact<u16>,
    last_step: Compact<u64>,
    blocks_since_last_step: Compact<u64>,
    /// subnet_emission, alpha_in, alpha_out, tao_in, alpha_out_emission, alpha_in_emission,
    /// tao_in_emission, pending_alpha_emission, pending_root_emission.
    emissions: [Compact<u64>; 9],
    subnet_volume: Compact<u128>,
    moving_price: i128,
    rho: Compact<u16>,
    kappa: Compact<u16>,
    min_allowed_weights: Compact<u16>,
    max_weights_limit: Compact<u16>,
    weights_version: Compact<u64>,
    weights_rate_limit: Compact<u64>,
    activity_cutoff: Compact<u16>,
    max_validators: Compact<u16>,
    num_uids: Compact<u16>,
    max_uids: Compact<u16>,
    burn: Compact<u64>,
    difficulty: Compact<u64>,
    registration_allowed: bool,
    pow_registration_allowed: bool,
    immunity_period: Compact<u16>,
    min_difficulty: Compact<u64>,
    max_difficulty: Compact<u64>,
    min_burn: Compact<u64>,
    max_burn: Compact<u64>,
    adjustment_alpha: Compact<u64>,
    adjustment_interval: Compact<u16>,
    target_regs_per_interval: Compact<u16>,
    max_regs_per_block: Compact<u16>,
    serving_rate_limit: Compact<u64>,
    commit_reveal_weights_enabled: bool,
    commit_reveal_period: Compact<u64>,
    liquid_alpha_enabled: bool,
    alpha_high: Compact<u16>,
    alpha_low: Compact<u16>,
    bonds_moving_avg: Compact<u64>,
    hotkeys: Vec<AccountId>,
    coldkeys: Vec<AccountId>,
    identities: Vec<Option<()>>,
    axons: Vec<AxonInfo>,
    active: Vec<bool>,
    validator_permit: Vec<bool>,
    pruning_score: Vec<Compact<u16>>,
    last_update: Vec<Compact<u64>>,
    emission: Vec<Compact<u64>>,
    dividends: Vec<Compact<u16>>,
    incentives: Vec<Compact<u16>>,
    consensus: Vec<Compact<u16>>,
    trust: Vec<Compact<u16>>,
    rank: Vec<Compact<u16>>,
    block_at_registration: Vec<Compact<u64>>,
    alpha_stake: Vec<Compact<u64>>,
    tao_stake: Vec<Compact<u64>>,
    total_stake: Vec<Compact<u64>>,
    tao_dividends_per_hotkey: Vec<(AccountId, Compact<u64>)>,
    alpha_dividends_per_hotkey: Vec<(AccountId, Compact<u64>)>,
}

/// `SubnetHyperparams` (the V2 form appends [`HyperparamsV2Tail`]).
#[derive(Encode)]
struct Hyperparams {
    rho: Compact<u16>,
    kappa: Compact<u16>,
    immunity_period: Compact<u16>,
    min_allowed_weights: Compact<u16>,
    max_weights_limit: Compact<u16>,
    tempo: Compact<u16>,
    min_difficulty: Compact<u64>,
    max_difficulty: Compact<u64>,
    weights_version: Compact<u64>,
    weights_rate_limit: Compact<u64>,
    adjustment_interval: Compact<u16>,
    activity_cutoff: Compact<u16>,
    registration_allowed: bool,
    target_regs_per_interval: Compact<u16>,
    min_burn: Compact<u64>,
    max_burn: Compact<u64>,
    bonds_moving_avg: Compact<u64>,
    max_regs_per_block: Compact<u16>,
    serving_rate_limit: Compact<u64>,
    max_validators: Compact<u16>,
    adjustment_alpha: Compact<u64>,
    difficulty: Compact<u64>,
    commit_reveal_period: Compact<u64>,
    commit_reveal_weights_enabled: bool,
    alpha_high: Compact<u16>,
    alpha_low: Compact<u16>,
    liquid_alpha_enabled: bool,
}

/// The fields `SubnetHyperparamsV2` adds.
#[derive(Encode)]
struct HyperparamsV2Tail {
    /// I32F32 bits.
    alpha_sigmoid_steepness: i64,
    yuma_version: Compact<u16>,
    subnet_is_active: bool,
    transfers_enabled: bool,
    bonds_reset_enabled: bool,
    user_liquidity_enabled: bool,
}

fn clamp16(x: u64) -> Compact<u16> {
    Compact(saturating_u16(x))
}

fn per_uid<T>(st: &State, f: impl Fn(&Neuron) -> T) -> Vec<T> {
    st.neurons.iter().map(f).collect()
}

impl DevChain {
    fn hyperparams(&self) -> Hyperparams {
        let (c, y) = (&self.cfg, &self.cfg.yuma);
        Hyperparams {
            rho: Compact(10),
            kappa: Compact(u16_proportion(y.kappa)),
            immunity_period: clamp16(c.immunity_period),
            min_allowed_weights: Compact(c.min_allowed_weights),
            max_weights_limit: Compact(u16::MAX),
            tempo: clamp16(c.tempo),
            min_difficulty: Compact(0),
            max_difficulty: Compact(0),
            weights_version: Compact(c.weights_version_key),
            weights_rate_limit: Compact(c.weights_rate_limit),
            adjustment_interval: Compact(0),
            activity_cutoff: clamp16(y.activity_cutoff),
            registration_allowed: true,
            target_regs_per_interval: Compact(0),
            min_burn: Compact(c.burn),
            max_burn: Compact(c.burn),
            bonds_moving_avg: Compact(y.bonds_moving_average.max(0.0) as u64),
            max_regs_per_block: Compact(0),
            serving_rate_limit: Compact(0),
            max_validators: clamp16(y.max_validators as u64),
            adjustment_alpha: Compact(0),
            difficulty: Compact(0),
            commit_reveal_period: Compact(c.reveal_period_epochs),
            commit_reveal_weights_enabled: c.commit_reveal_enabled,
            alpha_high: Compact(u16_proportion(y.alpha_high)),
            alpha_low: Compact(u16_proportion(y.alpha_low)),
            liquid_alpha_enabled: y.liquid_alpha,
        }
    }

    fn hyperparams_v2_tail(&self) -> HyperparamsV2Tail {
        let y = &self.cfg.yuma;
        HyperparamsV2Tail {
            alpha_sigmoid_steepness: (y.alpha_sigmoid_steepness * 4_294_967_296.0) as i64,
            yuma_version: Compact(if y.yuma3 { 3 } else { 2 }),
            subnet_is_active: true,
            transfers_enabled: true,
            bonds_reset_enabled: false,
            user_liquidity_enabled: false,
        }
    }

    fn metagraph_of(&self, st: &State) -> Metagraph {
        let c = &self.cfg;
        // The hyperparameters the metagraph repeats, from the one place that sets them.
        let h = self.hyperparams();
        let zero16 = |st: &State| per_uid(st, |_| Compact(0_u16));
        Metagraph {
            netuid: Compact(c.netuid),
            name: text("connito devnet"),
            symbol: text("\u{3c4}"),
            identity: None,
            network_registered_at: Compact(0),
            owner_hotkey: [0; 32],
            owner_coldkey: [0; 32],
            block: Compact(st.block),
            tempo: h.tempo,
            last_step: Compact(st.clock.last_epoch_block),
            blocks_since_last_step: Compact(st.clock.blocks_since_last_step),
            emissions: [Compact(0); 9],
            subnet_volume: Compact(0),
            moving_price: 0,
            rho: h.rho,
            kappa: h.kappa,
            min_allowed_weights: h.min_allowed_weights,
            max_weights_limit: h.max_weights_limit,
            weights_version: h.weights_version,
            weights_rate_limit: h.weights_rate_limit,
            activity_cutoff: h.activity_cutoff,
            max_validators: h.max_validators,
            num_uids: Compact(st.neurons.len() as u16),
            max_uids: Compact(c.max_uids),
            burn: Compact(c.burn),
            difficulty: h.difficulty,
            registration_allowed: h.registration_allowed,
            pow_registration_allowed: false,
            immunity_period: h.immunity_period,
            min_difficulty: h.min_difficulty,
            max_difficulty: h.max_difficulty,
            min_burn: h.min_burn,
            max_burn: h.max_burn,
            adjustment_alpha: h.adjustment_alpha,
            adjustment_interval: h.adjustment_interval,
            target_regs_per_interval: h.target_regs_per_interval,
            max_regs_per_block: h.max_regs_per_block,
            serving_rate_limit: h.serving_rate_limit,
            commit_reveal_weights_enabled: h.commit_reveal_weights_enabled,
            commit_reveal_period: h.commit_reveal_period,
            liquid_alpha_enabled: h.liquid_alpha_enabled,
            alpha_high: h.alpha_high,
            alpha_low: h.alpha_low,
            bonds_moving_avg: h.bonds_moving_avg,
            hotkeys: per_uid(st, |n| n.hotkey),
            coldkeys: per_uid(st, Neuron::coldkey),
            identities: per_uid(st, |_| None),
            axons: per_uid(st, |n| n.axon.unwrap_or_default()),
            active: per_uid(st, |n| n.active),
            validator_permit: per_uid(st, |n| n.validator_permit),
            pruning_score: zero16(st),
            last_update: per_uid(st, |n| Compact(n.last_update)),
            emission: per_uid(st, |n| Compact(rao(n.emission))),
            dividends: per_uid(st, |n| Compact(u16_proportion(n.dividends))),
            incentives: per_uid(st, |n| Compact(u16_proportion(n.incentive))),
            consensus: per_uid(st, |n| Compact(u16_proportion(n.consensus))),
            trust: zero16(st),
            rank: zero16(st),
            block_at_registration: per_uid(st, |n| Compact(n.registered_at)),
            alpha_stake: per_uid(st, |n| Compact(rao(n.stake))),
            tao_stake: per_uid(st, |_| Compact(0)),
            total_stake: per_uid(st, |n| Compact(rao(n.stake))),
            tao_dividends_per_hotkey: per_uid(st, |n| (n.hotkey, Compact(0))),
            alpha_dividends_per_hotkey: per_uid(st, |n| (n.hotkey, Compact(0))),
        }
    }

    /// Answers the chain-state runtime APIs; `None` for any other method.
    pub(super) fn state_call(
        &self,
        method: &str,
        data: &[u8],
    ) -> Option<Result<Vec<u8>, RuntimeCallError>> {
        let (api, name) = method.split_once('_')?;
        // Only what the emulated runtime has (spec 365 has no `get_next_epoch_start_block`).
        self.cfg.runtime.metadata().runtime_api(api, name)?;
        METHODS.contains(&method).then(|| self.answer(method, data))
    }
}

/// The chain-state runtime APIs the dev chain answers (`Api_method`).
pub const METHODS: [&str; 10] = [
    "AccountNonceApi_account_nonce",
    "NeuronInfoRuntimeApi_get_neurons_lite",
    "NeuronInfoRuntimeApi_get_neuron_lite",
    "SubnetInfoRuntimeApi_get_metagraph",
    "SubnetInfoRuntimeApi_get_subnet_hyperparams",
    "SubnetInfoRuntimeApi_get_subnet_hyperparams_v2",
    "SubnetInfoRuntimeApi_get_dynamic_info",
    "SubnetInfoRuntimeApi_get_all_dynamic_info",
    "SubnetInfoRuntimeApi_get_next_epoch_start_block",
    "SwapRuntimeApi_current_alpha_price",
];

/// `DynamicInfo` (spec 365): a subnet's pool and emission summary, as `btcli subnets list`
/// reads it. The dev chain has no AMM pool: reserves are 0 and the price is 1.
#[derive(Encode)]
struct DynamicInfo {
    netuid: Compact<u16>,
    owner_hotkey: AccountId,
    owner_coldkey: AccountId,
    subnet_name: Vec<Compact<u8>>,
    token_symbol: Vec<Compact<u8>>,
    tempo: Compact<u16>,
    last_step: Compact<u64>,
    blocks_since_last_step: Compact<u64>,
    emission: Compact<u64>,
    alpha_in: Compact<u64>,
    alpha_out: Compact<u64>,
    tao_in: Compact<u64>,
    alpha_out_emission: Compact<u64>,
    alpha_in_emission: Compact<u64>,
    tao_in_emission: Compact<u64>,
    pending_alpha_emission: Compact<u64>,
    pending_root_emission: Compact<u64>,
    subnet_volume: Compact<u128>,
    network_registered_at: Compact<u64>,
    subnet_identity: Option<()>,
    /// I96F32 bits: 1.0.
    moving_price: i128,
}

fn text(s: &str) -> Vec<Compact<u8>> {
    s.bytes().map(Compact).collect()
}

/// Rao per alpha the dev chain quotes (`SwapRuntimeApi_current_alpha_price`): 1 TAO.
const ALPHA_PRICE: u64 = 1_000_000_000;

impl DevChain {
    /// Netuid 0 (root, which clients expect first) and the dev chain's subnet.
    fn dynamic_info(&self, st: &State, netuid: u16) -> Option<DynamicInfo> {
        let (name, tempo) = match netuid {
            0 => ("root", 0),
            n if n == self.cfg.netuid => ("connito devnet", self.cfg.tempo),
            _ => return None,
        };
        Some(DynamicInfo {
            netuid: Compact(netuid),
            owner_hotkey: [0; 32],
            owner_coldkey: [0; 32],
            subnet_name: text(name),
            token_symbol: text("\u{3c4}"),
            tempo: clamp16(tempo),
            last_step: Compact(st.clock.last_epoch_block),
            blocks_since_last_step: Compact(st.clock.blocks_since_last_step),
            emission: Compact(0),
            alpha_in: Compact(0),
            alpha_out: Compact(0),
            tao_in: Compact(0),
            alpha_out_emission: Compact(0),
            alpha_in_emission: Compact(0),
            tao_in_emission: Compact(0),
            pending_alpha_emission: Compact(rao(st.pending_emission)),
            pending_root_emission: Compact(0),
            subnet_volume: Compact(0),
            network_registered_at: Compact(0),
            subnet_identity: None,
            moving_price: 1 << 32,
        })
    }

    /// `get_next_epoch_start_block`: the clock's answer for the dev subnet; for any other netuid
    /// what Subtensor answers for a subnet with no state (the default tempo 360 from block 0).
    fn next_epoch_start_block(&self, st: &State, netuid: u16) -> Option<u64> {
        let (clock, subnet) = (self.cfg.runtime.clock(), self.subnet());
        if netuid == self.cfg.netuid {
            return clock.next_epoch_start_block(&st.clock, subnet, st.block);
        }
        let other = crate::chain::epoch_clock::Subnet { netuid, tempo: 360 };
        clock.next_epoch_start_block(&Default::default(), other, st.block)
    }

    fn answer(&self, method: &str, mut data: &[u8]) -> Result<Vec<u8>, RuntimeCallError> {
        let bad = |reason: String| RuntimeCallError::BadArguments {
            method: method.to_string(),
            reason,
        };
        if method == "AccountNonceApi_account_nonce" {
            let who = AccountId::decode(&mut data).map_err(|e| bad(e.to_string()))?;
            if !data.is_empty() {
                return Err(bad(format!("{} bytes left over", data.len())));
            }
            // The nonce of the state (subxt reads it at a block), not counting the pool.
            let st = self.state.lock().expect("chain lock");
            return Ok(Self::account(&st, &who).nonce.encode());
        }
        if method == "SubnetInfoRuntimeApi_get_all_dynamic_info" {
            if !data.is_empty() {
                return Err(bad(format!("{} bytes left over", data.len())));
            }
            let st = self.state.lock().expect("chain lock");
            let mut netuids = vec![0, self.cfg.netuid];
            netuids.dedup();
            let all: Vec<Option<DynamicInfo>> = netuids
                .into_iter()
                .map(|n| self.dynamic_info(&st, n))
                .collect();
            return Ok(all.encode());
        }
        let netuid = u16::decode(&mut data).map_err(|e| bad(e.to_string()))?;
        let uid = match method {
            "NeuronInfoRuntimeApi_get_neuron_lite" => {
                Some(u16::decode(&mut data).map_err(|e| bad(e.to_string()))?)
            }
            _ => None,
        };
        if !data.is_empty() {
            return Err(bad(format!("{} bytes left over", data.len())));
        }
        let st = self.state.lock().expect("chain lock");
        let ours = netuid == self.cfg.netuid;
        Ok(match (method, uid) {
            ("NeuronInfoRuntimeApi_get_neuron_lite", Some(uid)) => {
                let n = st.neurons.get(usize::from(uid)).filter(|_| ours);
                n.map(|x| neuron_lite(netuid, usize::from(uid), x)).encode()
            }
            ("NeuronInfoRuntimeApi_get_neurons_lite", _) => {
                let all: Vec<NeuronInfoLite> = if ours {
                    (st.neurons.iter().enumerate())
                        .map(|(uid, x)| neuron_lite(netuid, uid, x))
                        .collect()
                } else {
                    Vec::new()
                };
                all.encode()
            }
            ("SubnetInfoRuntimeApi_get_subnet_hyperparams", _) => {
                ours.then(|| self.hyperparams()).encode()
            }
            ("SubnetInfoRuntimeApi_get_subnet_hyperparams_v2", _) => ours
                .then(|| (self.hyperparams(), self.hyperparams_v2_tail()))
                .encode(),
            ("SubnetInfoRuntimeApi_get_dynamic_info", _) => self.dynamic_info(&st, netuid).encode(),
            ("SubnetInfoRuntimeApi_get_next_epoch_start_block", _) => {
                self.next_epoch_start_block(&st, netuid).encode()
            }
            ("SwapRuntimeApi_current_alpha_price", _) => {
                if ours || netuid == 0 { ALPHA_PRICE } else { 0 }.encode()
            }
            _ => ours.then(|| self.metagraph_of(&st)).encode(),
        })
    }
}
