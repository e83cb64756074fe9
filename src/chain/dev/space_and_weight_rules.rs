use super::tests::run;
use super::*;

fn chain(cfg: DevChainConfig) -> DevChain {
    DevChain::in_memory(
        DevChainConfig {
            tempo: 10,
            commit_reveal_enabled: false,
            ..cfg
        },
        1,
        0,
    )
}

#[test]
fn commitment_space_is_limited_per_epoch() {
    let c = chain(DevChainConfig {
        commitment_space_per_epoch: 200,
        ..Default::default()
    });
    let k = Hotkey::dev("m");
    run(c.register(&k, 102)).unwrap();
    run(c.set_commitment(&k, 102, vec![1; 100])).unwrap();
    run(c.set_commitment(&k, 102, vec![1; 100])).unwrap();
    assert_eq!(
        run(c.set_commitment(&k, 102, vec![1; 1])),
        Err(ChainError::SpaceLimitExceeded {
            used: 200,
            requested: 1,
            limit: 200
        })
    );
    for _ in 0..10 {
        c.produce_block().unwrap();
    }
    run(c.set_commitment(&k, 102, vec![1; 100])).expect("a new epoch has fresh space");
}

#[test]
fn min_allowed_weights_and_max_upscaling() {
    let c = chain(DevChainConfig {
        min_allowed_weights: 2,
        ..Default::default()
    });
    let v = Hotkey::dev("v");
    for k in [&v, &Hotkey::dev("a"), &Hotkey::dev("b")] {
        run(c.register(k, 102)).unwrap();
    }
    run(c.add_stake(&v, 102, 10.0)).unwrap();
    assert_eq!(
        run(c.set_weights(&v, 102, vec![1], vec![5], 0)),
        Err(ChainError::WeightVecLengthIsLow { len: 1, min: 2 })
    );
    run(c.set_weights(&v, 102, vec![0], vec![7], 0)).expect("a lone self-weight is allowed");
    let c = chain(DevChainConfig {
        min_allowed_weights: 2,
        ..Default::default()
    });
    for k in [&v, &Hotkey::dev("a"), &Hotkey::dev("b")] {
        run(c.register(k, 102)).unwrap();
    }
    run(c.add_stake(&v, 102, 10.0)).unwrap();
    run(c.set_weights(&v, 102, vec![1, 2], vec![100, 50], 0)).unwrap();
    let st = c.state.lock().unwrap();
    // 50·65535/100 = 32767.5: the chain's fixed point rounds half up.
    assert_eq!(st.neurons[0].weights, vec![(1, 65_535), (2, 32_768)]);
}
