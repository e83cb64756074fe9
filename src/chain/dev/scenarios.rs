//! Subtensor's two-server Yuma3 scenarios ([`TWO_SERVER`]) on the dev chain: real
//! registrations, stake, `set_weights` extrinsics (so the stored rows hold the explicit zero
//! entries Subtensor keeps) and the chain's own epoch every block, checked against the chain's
//! targets. Also what `set_weights`, `reveal_weights` and re-registration store.

use super::tests::{advance_to, run, subnet};
use super::*;
use crate::consensus::scenarios::{TWO_SERVER, TWO_SERVER_UIDS, TwoServer, yuma3_scenario_params};

fn stored(c: &DevChain, uid: usize) -> Vec<(u16, u16)> {
    c.state.lock().unwrap().neurons[uid].weights.clone()
}

/// Plain `set_weights`, an epoch every `tempo` blocks, no rate limit.
fn chain(yuma: YumaParams, tempo: u64) -> DevChain {
    let cfg = DevChainConfig {
        tempo,
        weights_rate_limit: 0,
        commit_reveal_enabled: false,
        yuma,
        ..Default::default()
    };
    DevChain::in_memory(cfg, 1, 1)
}

/// Replays `sc`; returns the largest deviations of dividends and stored bonds from the targets.
fn replay(sc: &TwoServer) -> (f64, f64) {
    let mut yuma = yuma3_scenario_params();
    yuma.liquid_alpha = sc.liquid_alpha;
    let c = chain(yuma, 1);
    let keys: Vec<Hotkey> = ["A", "B", "C", "S1", "S2"].map(Hotkey::dev).to_vec();
    for k in &keys {
        run(c.register(k, 102)).unwrap();
    }
    for (k, &s) in keys.iter().zip(&sc.stakes) {
        run(c.add_stake(k, 102, s)).unwrap();
    }
    c.produce_block().unwrap(); // the setup epoch hands out the permits
    let (mut div_dev, mut bond_dev) = (0.0_f64, 0.0_f64);
    for (e, targets) in sc.dividends.iter().enumerate() {
        if let Some(rows) = sc.weights[e] {
            for (k, r) in keys.iter().zip(rows) {
                let uids = TWO_SERVER_UIDS.to_vec();
                run(c.set_weights(k, 102, uids, r.to_vec(), 0)).unwrap();
            }
        }
        c.produce_block().unwrap();
        let mg = run(c.metagraph(102)).unwrap();
        for (n, want) in mg.iter().zip(targets) {
            div_dev = div_dev.max((n.dividends - want).abs());
        }
        let st = c.state.lock().unwrap();
        for (i, row) in sc.bonds[e].iter().enumerate() {
            for (&j, &want) in TWO_SERVER_UIDS.iter().zip(row) {
                let b = &st.neurons[i].bonds;
                let got = b.iter().find(|x| x.0 == j).map_or(0.0, |x| x.1);
                bond_dev = bond_dev.max((got - want).abs());
            }
        }
    }
    (div_dev, bond_dev)
}

#[test]
fn two_server_scenarios_meet_the_chain_targets_on_the_dev_chain() {
    for sc in &TWO_SERVER {
        let (d, b) = replay(sc);
        eprintln!(
            "dev chain: {}: largest deviation dividends {d:.2e}, bonds {b:.2e}",
            sc.name
        );
        assert!(
            d <= 1e-3 && b <= 1e-3,
            "{}: dividends {d}, bonds {b}",
            sc.name
        );
    }
}

#[test]
fn set_weights_stores_every_pair_sent_max_upscaled_as_the_chain_does() {
    let c = chain(YumaParams::default(), 100);
    let (v, _, _) = subnet(&c);
    /// Uids and values sent, pairs stored.
    type Case<'a> = (&'a [u16], &'a [u16], &'a [(u16, u16)]);
    let cases: &[Case] = &[
        (&[1, 2], &[0, 40_000], &[(1, 0), (2, 65_535)]),
        (&[1, 2], &[40_000, 20_000], &[(1, 65_535), (2, 32_767)]),
        (&[2, 1], &[1, 2], &[(2, 32_768), (1, 65_535)]),
        (&[1, 2], &[0, 0], &[(1, 0), (2, 0)]),
    ];
    for (uids, values, want) in cases {
        run(c.set_weights(&v, 102, uids.to_vec(), values.to_vec(), 0)).unwrap();
        assert_eq!(stored(&c, 0), *want, "sent {uids:?} {values:?}");
    }
}

#[test]
fn a_revealed_zero_weight_is_stored_as_an_entry() {
    let cfg = DevChainConfig {
        tempo: 10,
        weights_rate_limit: 5,
        ..Default::default()
    };
    let c = DevChain::in_memory(cfg, 1, 0);
    let (v, _, _) = subnet(&c);
    let (uids, values, salt) = (vec![1, 2], vec![0, 300], vec![7, 8]);
    let h = commit_hash(&v.public(), 102, &uids, &values, &salt, 0);
    run(c.commit_weights(&v, 102, h)).unwrap();
    advance_to(&c, 10);
    run(c.reveal_weights(&v, 102, uids, values, salt, 0)).unwrap();
    assert_eq!(stored(&c, 0), vec![(1, 0), (2, 65_535)]);
}

#[test]
fn a_replaced_uid_keeps_the_weight_entries_towards_it_at_zero() {
    let cfg = DevChainConfig {
        tempo: 100,
        max_uids: 3,
        immunity_period: 2,
        weights_rate_limit: 0,
        commit_reveal_enabled: false,
        ..Default::default()
    };
    let c = DevChain::in_memory(cfg, 1, 0);
    let (v, _, _) = subnet(&c);
    run(c.set_weights(&v, 102, vec![1, 2], vec![100, 50], 0)).unwrap();
    for _ in 0..3 {
        c.produce_block().unwrap();
    }
    // Every uid has emission 0: the lowest uid outside immunity (0, the validator) would go
    // first, so give it emission; uid 1 is replaced.
    c.state.lock().unwrap().neurons[0].emission = 1.0;
    assert_eq!(run(c.register(&Hotkey::dev("new"), 102)).unwrap(), 1);
    assert_eq!(stored(&c, 0), vec![(1, 0), (2, 32_768)]);
}
