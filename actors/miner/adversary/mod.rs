//! Miner strategies: [`Strategy`] is what the Trainer and Publisher ask at each point where a
//! miner could behave otherwise than honestly; an honest miner answers "as usual" everywhere.
//! localnet's dishonest miners (`connito localnet --adversaries all`) are the other answers:
//! what each submits or serves instead of an honest shard. `connito miner` is always honest;
//! the adversaries exist so that a test can show a validator pays none of them. Their
//! commit-phase steps are in [`publish`].

pub mod publish;

use connito::config::LocalnetConfig;
use connito::config::Role;
use connito::data::TokenBatch;
use connito::phase::Phase;
use connito::rng::{SplitMix64, mix};
use connito::tensors::{StateDict, hash_u64};
use tokio::net::TcpListener;

use crate::node::http::Response;

/// How a miner behaves: honestly, or as one of localnet's adversaries (its [`Role`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strategy(pub Role);

impl Strategy {
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// Whether it trains a shard of its own (a hash-copier only takes another's).
    pub fn trains(self) -> bool {
        self.0 != Role::Copier
    }

    /// Whether its Publisher acts in a cycle its Trainer stored nothing for.
    pub fn publishes_untrained(self) -> bool {
        self.0 == Role::Copier
    }

    /// The model it trains from, given the current global model: that model, or (the stale
    /// adversary) genesis, sitting out (`None`) until a model newer than genesis exists.
    pub fn start_from(
        self,
        cfg: &LocalnetConfig,
        version: u64,
        global: StateDict,
    ) -> Option<(u64, StateDict)> {
        match self.0 {
            Role::Stale if version == 0 => None,
            Role::Stale => Some((0, connito::genesis::genesis_model(cfg))),
            _ => Some((version, global)),
        }
    }

    /// A shard made from the global experts without training ([`untrained`]).
    pub fn untrained(self, global_group: StateDict, seed: u64) -> Option<StateDict> {
        untrained(self.0, global_group, seed)
    }

    /// The batches it trains on instead of its training stream: the heldout-trainer's guess of
    /// the round's evaluation rows, from everything public.
    pub fn training_rows(
        self,
        cfg: &LocalnetConfig,
        clock: &connito::phase::PhaseClock,
        group: u16,
        cycle: u64,
    ) -> Option<Vec<TokenBatch>> {
        if self.0 != Role::HeldoutTrainer {
            return None;
        }
        let domain = &cfg.domains[group as usize];
        let guess = guessed_round_seed(cfg.seed, seed_block(clock, cycle), cycle);
        Some(connito::pol::round_batches(cfg, domain, guess))
    }

    /// What its HTTP server answers besides the honest routes (a garbage server's bytes).
    pub fn extra_route(self, path: &str) -> Option<Response> {
        (self.0 == Role::GarbageServer)
            .then(|| garbage(path))
            .flatten()
    }
}

/// A shard made from the global experts without training, for the roles that make one:
/// `None` for roles that train or take someone else's shard.
fn untrained(role: Role, mut global_group: StateDict, seed: u64) -> Option<StateDict> {
    match role {
        // Their shard only makes the commitment well-formed; their location is the attack.
        Role::FreeRider | Role::GarbageServer | Role::SlowServer | Role::Ssrf => {}
        // Their shard is replaced by the one they take, in the publisher.
        Role::Copier | Role::ShardThief | Role::Replayer => {}
        Role::NoiseAdder => {
            let mut r = SplitMix64::new(seed);
            for t in global_group.values_mut() {
                for v in &mut t.data {
                    *v += r.normal_f32() * 1e-4;
                }
            }
        }
        Role::Nan => {
            let t = global_group.values_mut().next()?;
            *t.data.first_mut()? = f32::NAN;
        }
        Role::Overflow => {
            let t = global_group.values_mut().next()?;
            let row = *t.shape.last()?;
            t.data.iter_mut().take(row).for_each(|v| *v = 1e30);
        }
        Role::Honest | Role::Stale | Role::HeldoutTrainer => return None,
    }
    Some(global_group)
}

/// The heldout-trainer's best public guess of a round's evaluation seed: the block hash as a
/// dev chain without a secret salt would have made it, from the config seed and the block.
fn guessed_round_seed(config_seed: u64, seed_block: u64, cycle: u64) -> u64 {
    let guess = connito::tensors::blake2b_256(
        &[config_seed.to_le_bytes(), seed_block.to_le_bytes()].concat(),
    );
    connito::pol::round_seed(&guess, cycle)
}

/// The block a round's evaluation seed comes from (the first Submission block).
fn seed_block(clock: &connito::phase::PhaseClock, cycle: u64) -> u64 {
    clock.phase_start(cycle, Phase::Submission)
}

/// `bytes` with one bit of its last byte flipped (a "new" shard with a new hash).
fn flip_one_bit(mut bytes: Vec<u8>) -> Vec<u8> {
    if let Some(b) = bytes.last_mut() {
        *b ^= 1;
    }
    bytes
}

/// Random bytes for a garbage server's `/g/{cycle}/...` routes.
fn garbage(path: &str) -> Option<Response> {
    path.strip_prefix("/g/")?;
    let mut r = SplitMix64::new(mix(&[hash_u64(&connito::tensors::blake2b_256(
        path.as_bytes(),
    ))]));
    let body: Vec<u8> = (0..4096).map(|_| r.next_u64() as u8).collect();
    Some(Response::ok("application/octet-stream", body))
}

/// A slow server: accepts connections and never answers (each is held for a minute, then
/// dropped). Returns its base URL.
async fn tarpit() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                drop(sock);
            });
        }
    });
    Ok(format!("http://{addr}"))
}

/// Another daemon an adversary acts on: its hotkey and its HTTP base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub hotkey: [u8; 32],
    pub url: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use connito::tensors::TensorBlob;

    fn group() -> StateDict {
        StateDict::from([(
            "w".to_string(),
            TensorBlob::new(vec![2, 3], vec![0.5; 6]).unwrap(),
        )])
    }

    #[test]
    fn tampered_shards() {
        assert_eq!(untrained(Role::FreeRider, group(), 1), Some(group()));
        assert_eq!(untrained(Role::Honest, group(), 1), None);
        let nan = untrained(Role::Nan, group(), 1).unwrap();
        assert!(nan["w"].data[0].is_nan());
        let big = untrained(Role::Overflow, group(), 1).unwrap();
        assert_eq!(big["w"].data, [1e30, 1e30, 1e30, 0.5, 0.5, 0.5]);
        let noisy = untrained(Role::NoiseAdder, group(), 1).unwrap();
        let diff: f32 = noisy["w"].data.iter().map(|v| (v - 0.5).abs()).sum();
        assert!(diff > 0.0 && diff < 6e-3, "{diff}");
    }

    #[test]
    fn only_adversaries_leave_the_honest_path() {
        let h = Strategy(Role::Honest);
        assert!(h.trains() && !h.publishes_untrained());
        assert_eq!(h.untrained(group(), 1), None);
        assert!(h.extra_route("/g/1/shard").is_none());
        let cfg = LocalnetConfig::default();
        assert_eq!(h.start_from(&cfg, 3, group()), Some((3, group())));
        let copier = Strategy(Role::Copier);
        assert!(!copier.trains() && copier.publishes_untrained());
        let stale = Strategy(Role::Stale);
        assert_eq!(
            stale.start_from(&cfg, 0, group()),
            None,
            "sits out until v1"
        );
        assert_eq!(stale.start_from(&cfg, 2, group()).map(|(v, _)| v), Some(0));
        assert!(
            Strategy(Role::GarbageServer)
                .extra_route("/g/1/shard")
                .is_some()
        );
    }

    #[test]
    fn one_bit_and_garbage() {
        assert_eq!(flip_one_bit(vec![1, 2]), vec![1, 3]);
        assert!(garbage("/s/1/shard").is_none());
        let a = garbage("/g/1/shard").unwrap().body;
        assert_eq!(a.len(), 4096);
        assert_ne!(a, garbage("/g/2/shard").unwrap().body);
    }
}
