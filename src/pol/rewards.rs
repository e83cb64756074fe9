//! From round scores to weights (reference scheme, minus its copy weakness).
//!
//! Each round, the top three *distinct* positive scores earn points (2.25, 1.5, 1.0). A score
//! exactly equal to an earlier-committed one is a copy and earns nothing (the reference zeroed
//! every equal score, which let a copier zero the leader). Weights come from each uid's points
//! averaged over the last `window` rounds: `top_share` to the top three, the rest to the next five.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardConfig {
    pub points: Vec<f64>,
    pub window: usize,
    pub top_share: f64,
    pub tail_count: usize,
}

impl Default for RewardConfig {
    fn default() -> Self {
        Self {
            points: vec![2.25, 1.5, 1.0],
            window: 8,
            top_share: 0.98,
            tail_count: 5,
        }
    }
}

/// One scored submission of a round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub uid: u16,
    pub score: f64,
    /// Block at which its hash was first seen on chain (earlier wins a tie).
    pub commit_block: u64,
}

/// Points per uid for one round.
pub fn round_points(cfg: &RewardConfig, scored: &[Scored]) -> BTreeMap<u16, f64> {
    let mut s: Vec<Scored> = scored
        .iter()
        .copied()
        .filter(|s| s.score.is_finite() && s.score > 0.0)
        .collect();
    s.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.commit_block.cmp(&b.commit_block))
            .then(a.uid.cmp(&b.uid))
    });
    let mut out = BTreeMap::new();
    let mut rank = 0;
    let mut last: Option<f64> = None;
    for x in s {
        if last == Some(x.score) {
            continue; // a later commit of the same score: a copy
        }
        last = Some(x.score);
        if let Some(p) = cfg.points.get(rank) {
            out.insert(x.uid, *p);
        }
        rank += 1;
    }
    out
}

/// A round's points with the hotkey that held each uid then.
pub type HeldPoints = BTreeMap<u16, ([u8; 32], f64)>;

/// Points of past rounds that still belong to each uid's current holder: a uid whose hotkey
/// changed (deregistered and taken by another) starts from zero, and a uid no longer in
/// `current` (uid → hotkey now) earns nothing.
pub fn points_of_current_holders(
    history: &[HeldPoints],
    current: &BTreeMap<u16, [u8; 32]>,
) -> Vec<BTreeMap<u16, f64>> {
    history
        .iter()
        .map(|round| {
            round
                .iter()
                .filter(|(uid, (hk, _))| current.get(uid) == Some(hk))
                .map(|(uid, (_, p))| (*uid, *p))
                .collect()
        })
        .collect()
}

/// Normalized weights per uid from the last `window` rounds of points (oldest first).
pub fn weights_from_history(
    cfg: &RewardConfig,
    history: &[BTreeMap<u16, f64>],
) -> BTreeMap<u16, f64> {
    let recent = &history[history.len().saturating_sub(cfg.window)..];
    let mut avg: BTreeMap<u16, f64> = BTreeMap::new();
    for round in recent {
        for (uid, p) in round {
            *avg.entry(*uid).or_default() += p / cfg.window as f64;
        }
    }
    let mut ranked: Vec<(u16, f64)> = avg.into_iter().filter(|(_, a)| *a > 0.0).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let top: Vec<(u16, f64)> = ranked.iter().take(3).copied().collect();
    let tail: Vec<(u16, f64)> = ranked
        .iter()
        .skip(3)
        .take(cfg.tail_count)
        .copied()
        .collect();
    let mut out = BTreeMap::new();
    let top_share = if tail.is_empty() { 1.0 } else { cfg.top_share };
    let share = |group: &[(u16, f64)], total_share: f64, out: &mut BTreeMap<u16, f64>| {
        let sum: f64 = group.iter().map(|(_, a)| a).sum();
        for (uid, a) in group {
            if sum > 0.0 {
                out.insert(*uid, total_share * a / sum);
            }
        }
    };
    share(&top, top_share, &mut out);
    share(&tail, 1.0 - top_share, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(uid: u16, score: f64, commit_block: u64) -> Scored {
        Scored {
            uid,
            score,
            commit_block,
        }
    }

    #[test]
    fn top_three_distinct_scores_get_points() {
        let p = round_points(
            &RewardConfig::default(),
            &[
                sc(1, 0.5, 10),
                sc(2, 0.9, 10),
                sc(3, 0.1, 10),
                sc(4, 0.7, 10),
                sc(5, 0.0, 1),
            ],
        );
        assert_eq!(p.get(&2), Some(&2.25));
        assert_eq!(p.get(&4), Some(&1.5));
        assert_eq!(p.get(&1), Some(&1.0));
        assert_eq!(p.get(&3), None);
        assert_eq!(p.get(&5), None);
    }

    #[test]
    fn equal_score_goes_to_earliest_commit_not_to_nobody() {
        let p = round_points(&RewardConfig::default(), &[sc(7, 0.5, 20), sc(3, 0.5, 11)]);
        assert_eq!(p.get(&3), Some(&2.25), "the leader keeps its reward");
        assert_eq!(p.get(&7), None, "the later identical score is a copy");
    }

    #[test]
    fn weights_average_over_the_window_and_sum_to_one() {
        let cfg = RewardConfig {
            window: 2,
            ..Default::default()
        };
        let r1: BTreeMap<u16, f64> = [(1, 2.25), (2, 1.5)].into();
        let r2: BTreeMap<u16, f64> = [(2, 2.25), (3, 1.0)].into();
        let old: BTreeMap<u16, f64> = [(9, 2.25)].into();
        let w = weights_from_history(&cfg, &[old, r1, r2]);
        assert!(
            !w.contains_key(&9),
            "rounds outside the window do not count"
        );
        let total: f64 = w.values().sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert!(w[&2] > w[&1] && w[&1] > w[&3]);
    }

    #[test]
    fn tail_gets_the_small_share() {
        let r: BTreeMap<u16, f64> = [(1, 5.0), (2, 4.0), (3, 3.0), (4, 1.0)].into();
        let w = weights_from_history(&RewardConfig::default(), &[r]);
        assert!((w[&4] - 0.02).abs() < 1e-12);
        assert!((w[&1] + w[&2] + w[&3] - 0.98).abs() < 1e-12);
    }

    #[test]
    fn a_uid_taken_by_another_hotkey_starts_from_zero() {
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        let history: Vec<HeldPoints> = vec![
            [(1, (a, 2.25)), (2, (b, 1.5)), (3, (c, 1.0))].into(),
            [(1, (a, 1.5)), (2, (c, 2.25))].into(),
        ];
        // uid 1 still a's; uid 2 now c's (b's points go, c's stay); uid 3 deregistered.
        let now: BTreeMap<u16, [u8; 32]> = [(1, a), (2, c)].into();
        let kept = points_of_current_holders(&history, &now);
        assert_eq!(kept[0], [(1, 2.25)].into());
        assert_eq!(kept[1], [(1, 1.5), (2, 2.25)].into());
        assert!(
            points_of_current_holders(&history, &BTreeMap::new())
                .iter()
                .all(BTreeMap::is_empty)
        );
    }

    #[test]
    fn no_positive_scores_no_weights() {
        assert!(weights_from_history(&RewardConfig::default(), &[BTreeMap::new()]).is_empty());
    }
}
