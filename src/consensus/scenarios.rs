//! Subtensor's own Yuma3 epoch scenarios whose state holds explicit zero weight entries
//! (`pallets/subtensor/src/tests/epoch.rs`, snapshot 14bc6f9 of opentensor/subtensor), as data:
//! one table, replayed by the pure epoch (`tests_scenarios.rs`), by `connito consensus yuma` on
//! sparse input (`cli.rs`) and by the dev chain's `set_weights` and epoch (`chain/dev_tests.rs`).
//!
//! Setup (`setup_yuma_3_scenario`): validators A, B, C (uids 0-2) and servers 1 and 2 (uids 3,
//! 4) registered at block 1; Yuma3, liquid alpha with `set_alpha_values_32(0.1, 0.3)` (stored as
//! 6553, 19660), steepness 1000, β = 0, bonds moving average 975000, kappa 32767, 3 permits,
//! tempo 1; an epoch a block later (no weights) hands out the permits. Then, epoch after epoch,
//! the validators may set new weights and the next block's epoch is checked: every uid's
//! dividend and the validators' stored bonds towards the two servers (4-decimal targets, the
//! chain's tolerance 1e-3).

use super::YumaParams;

const M: u16 = u16::MAX;
/// All on server 1: `[M, 0]` on uids `[3, 4]`, the 0 an explicit entry.
pub const S1: [u16; 2] = [M, 0];
/// All on server 2.
pub const S2: [u16; 2] = [0, M];
/// The two servers' uids.
pub const TWO_SERVER_UIDS: [u16; 2] = [3, 4];

/// One scenario: stakes of A, B, C; the weight rows set before each epoch (None: unchanged);
/// after each epoch the chain's bond targets (validator × server) and dividend targets (per uid).
pub struct TwoServer {
    pub name: &'static str,
    pub stakes: [f64; 3],
    pub liquid_alpha: bool,
    pub weights: [Option<[[u16; 2]; 3]>; 6],
    pub bonds: [[[f64; 2]; 3]; 6],
    pub dividends: [[f64; 5]; 6],
}

/// `setup_yuma_3_scenario`'s hyperparameters.
pub fn yuma3_scenario_params() -> YumaParams {
    let u16_max = f64::from(u16::MAX);
    YumaParams {
        yuma3: true,
        liquid_alpha: true,
        alpha_low: 6553.0 / u16_max,
        alpha_high: 19660.0 / u16_max,
        alpha_sigmoid_steepness: 1000.0,
        bonds_penalty: 0.0,
        bonds_moving_average: 975_000.0,
        kappa: 32_767.0 / u16_max,
        max_validators: 3,
        tempo: 1,
        ..YumaParams::default()
    }
}

pub const TWO_SERVER: [TwoServer; 4] = [
    // Validator A (0.8) moves to server 2 first, B (0.1) second, C (0.1) last.
    TwoServer {
        name: "test_yuma_3_kappa_moves_first",
        stakes: [8.0, 1.0, 1.0],
        liquid_alpha: true,
        weights: [
            Some([S1; 3]),
            Some([S2, S1, S1]),
            Some([S2, S2, S1]),
            Some([S2; 3]),
            None,
            None,
        ],
        bonds: [
            [[0.1013, 0.0000], [0.1013, 0.0000], [0.1013, 0.0000]],
            [[0.0908, 0.1013], [0.3697, 0.0000], [0.3697, 0.0000]],
            [[0.0815, 0.1924], [0.3170, 0.1013], [0.5580, 0.0000]],
            [[0.0731, 0.2742], [0.2765, 0.1924], [0.4306, 0.1013]],
            [[0.0656, 0.3478], [0.2435, 0.2742], [0.3589, 0.1924]],
            [[0.0588, 0.4139], [0.2157, 0.3478], [0.3089, 0.2742]],
        ],
        dividends: [
            [0.8000, 0.1000, 0.1000, 0.0, 0.0],
            [1.0000, 0.0000, 0.0000, 0.0, 0.0],
            [0.9382, 0.0618, 0.0000, 0.0, 0.0],
            [0.8819, 0.0773, 0.0407, 0.0, 0.0],
            [0.8564, 0.0844, 0.0592, 0.0, 0.0],
            [0.8418, 0.0884, 0.0697, 0.0, 0.0],
        ],
    },
    // B (0.1) moves first, the kappa validator A (0.8) second, C (0.1) last.
    TwoServer {
        name: "test_yuma_3_kappa_moves_second",
        stakes: [8.0, 1.0, 1.0],
        liquid_alpha: true,
        weights: [
            Some([S1; 3]),
            Some([S1, S2, S1]),
            Some([S2, S2, S1]),
            Some([S2; 3]),
            None,
            None,
        ],
        bonds: [
            [[0.1013, 0.0000], [0.1013, 0.0000], [0.1013, 0.0000]],
            [[0.1924, 0.0000], [0.0908, 0.2987], [0.1924, 0.0000]],
            [[0.1715, 0.1013], [0.0815, 0.3697], [0.4336, 0.0000]],
            [[0.1531, 0.1924], [0.0731, 0.4336], [0.3608, 0.1013]],
            [[0.1369, 0.2742], [0.0656, 0.4910], [0.3103, 0.1924]],
            [[0.1225, 0.3478], [0.0588, 0.5426], [0.2712, 0.2742]],
        ],
        dividends: [
            [0.8000, 0.1000, 0.1000, 0.0, 0.0],
            [0.8446, 0.0498, 0.1056, 0.0, 0.0],
            [0.6868, 0.3132, 0.0000, 0.0, 0.0],
            [0.7421, 0.2090, 0.0489, 0.0, 0.0],
            [0.7625, 0.1706, 0.0669, 0.0, 0.0],
            [0.7730, 0.1508, 0.0762, 0.0, 0.0],
        ],
    },
    // B (0.1) moves first, C (0.1) second, the kappa validator A (0.8) last.
    TwoServer {
        name: "test_yuma_3_kappa_moves_last",
        stakes: [8.0, 1.0, 1.0],
        liquid_alpha: true,
        weights: [
            Some([S1; 3]),
            Some([S1, S2, S1]),
            Some([S1, S2, S2]),
            Some([S2; 3]),
            None,
            None,
        ],
        bonds: [
            [[0.1013, 0.0000], [0.1013, 0.0000], [0.1013, 0.0000]],
            [[0.1924, 0.0000], [0.0908, 0.2987], [0.1924, 0.0000]],
            [[0.2742, 0.0000], [0.0815, 0.5081], [0.1715, 0.2987]],
            [[0.2416, 0.1013], [0.0731, 0.5580], [0.1531, 0.3697]],
            [[0.2141, 0.1924], [0.0656, 0.6028], [0.1369, 0.4336]],
            [[0.1903, 0.2742], [0.0588, 0.6430], [0.1225, 0.4910]],
        ],
        dividends: [
            [0.8000, 0.1000, 0.1000, 0.0, 0.0],
            [0.8446, 0.0498, 0.1056, 0.0, 0.0],
            [0.8966, 0.0333, 0.0701, 0.0, 0.0],
            [0.4663, 0.3210, 0.2127, 0.0, 0.0],
            [0.5976, 0.2340, 0.1683, 0.0, 0.0],
            [0.6592, 0.1932, 0.1475, 0.0, 0.0],
        ],
    },
    // Equal stakes; C switches to server 2 for one epoch only.
    TwoServer {
        name: "test_yuma_3_one_epoch_switch",
        stakes: [33.0, 33.0, 34.0],
        liquid_alpha: true,
        weights: [
            Some([S1; 3]),
            Some([S1; 3]),
            Some([S1, S1, S2]),
            Some([S1; 3]),
            Some([S1; 3]),
            Some([S1; 3]),
        ],
        bonds: [
            [[0.1013, 0.0000], [0.1013, 0.0000], [0.1013, 0.0000]],
            [[0.1924, 0.0000], [0.1924, 0.0000], [0.1924, 0.0000]],
            [[0.2742, 0.0000], [0.2742, 0.0000], [0.1715, 0.2987]],
            [[0.3478, 0.0000], [0.3478, 0.0000], [0.2554, 0.2618]],
            [[0.4139, 0.0000], [0.4139, 0.0000], [0.3309, 0.2312]],
            [[0.4733, 0.0000], [0.4733, 0.0000], [0.3987, 0.2051]],
        ],
        dividends: [
            [0.3300, 0.3300, 0.3400, 0.0, 0.0],
            [0.3300, 0.3300, 0.3400, 0.0, 0.0],
            [0.3782, 0.3782, 0.2436, 0.0, 0.0],
            [0.3628, 0.3628, 0.2745, 0.0, 0.0],
            [0.3541, 0.3541, 0.2917, 0.0, 0.0],
            [0.3487, 0.3487, 0.3026, 0.0, 0.0],
        ],
    },
];
