//! The genesis global model (version 0), identical for every party that knows the config: the
//! seeded init with the router warm-started from the groups' domains.

use crate::config::LocalnetConfig;
use crate::data::{Sampler, Split};
use crate::model::{init_state_dict, warm_start_router};
use crate::tensors::StateDict;

pub fn genesis_model(cfg: &LocalnetConfig) -> StateDict {
    let mut sd = init_state_dict(&cfg.model, cfg.seed);
    if cfg.genesis_router_gain > 0.0 {
        let texts: Vec<Vec<u32>> = cfg
            .domains
            .iter()
            .map(|d| {
                let mut s =
                    Sampler::new(d.clone(), cfg.seed, Split::Train, cfg.pol.heldout_every, 0);
                (0..200).flat_map(|_| s.next_sample_tokens()).collect()
            })
            .collect();
        warm_start_router(
            &cfg.model,
            &mut sd,
            &texts,
            cfg.genesis_router_gain,
            cfg.seed,
        );
    }
    sd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_is_deterministic_and_gain_zero_is_plain_init() {
        let cfg = LocalnetConfig::default();
        assert_eq!(genesis_model(&cfg), genesis_model(&cfg));
        let plain = LocalnetConfig {
            genesis_router_gain: 0.0,
            ..LocalnetConfig::default()
        };
        assert_eq!(
            genesis_model(&plain),
            init_state_dict(&plain.model, plain.seed)
        );
        assert_ne!(genesis_model(&cfg), genesis_model(&plain));
    }
}
