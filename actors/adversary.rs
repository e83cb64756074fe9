//! localnet's dishonest miners (`connito localnet --adversaries all`): what each submits or
//! serves instead of an honest shard. Nothing here runs in `connito miner`, which is always
//! honest; these exist so that a test can show a validator pays none of them.

use connito::config::Role;
use connito::phase::Phase;
use connito::rng::{SplitMix64, mix};
use connito::tensors::{StateDict, hash_u64};
use tokio::net::TcpListener;

use crate::http::Response;

/// A shard made from the global experts without training, for the roles that make one:
/// `None` for roles that train or take someone else's shard.
pub fn untrained(role: Role, mut global_group: StateDict, seed: u64) -> Option<StateDict> {
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
pub fn guessed_round_seed(config_seed: u64, seed_block: u64, cycle: u64) -> u64 {
    let guess = connito::tensors::blake2b_256(
        &[config_seed.to_le_bytes(), seed_block.to_le_bytes()].concat(),
    );
    connito::pol::round_seed(&guess, cycle)
}

/// The block a round's evaluation seed comes from (the first Submission block).
pub fn seed_block(clock: &connito::phase::PhaseClock, cycle: u64) -> u64 {
    clock.phase_start(cycle, Phase::Submission)
}

/// `bytes` with one bit of its last byte flipped (a "new" shard with a new hash).
pub fn flip_one_bit(mut bytes: Vec<u8>) -> Vec<u8> {
    if let Some(b) = bytes.last_mut() {
        *b ^= 1;
    }
    bytes
}

/// Random bytes for a garbage server's `/g/{cycle}/...` routes.
pub fn garbage(path: &str) -> Option<Response> {
    path.strip_prefix("/g/")?;
    let mut r = SplitMix64::new(mix(&[hash_u64(&connito::tensors::blake2b_256(
        path.as_bytes(),
    ))]));
    let body: Vec<u8> = (0..4096).map(|_| r.next_u64() as u8).collect();
    Some(Response::ok("application/octet-stream", body))
}

/// A slow server: accepts connections and never answers (each is held for a minute, then
/// dropped). Returns its base URL.
pub async fn tarpit() -> std::io::Result<String> {
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
    fn one_bit_and_garbage() {
        assert_eq!(flip_one_bit(vec![1, 2]), vec![1, 3]);
        assert!(garbage("/s/1/shard").is_none());
        let a = garbage("/g/1/shard").unwrap().body;
        assert_eq!(a.len(), 4096);
        assert_ne!(a, garbage("/g/2/shard").unwrap().body);
    }
}
