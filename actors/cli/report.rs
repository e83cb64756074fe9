//! The per-cycle localnet report: one JSON object per line, or a readable table.

use connito::chain::NeuronInfo;
use serde::Serialize;

use connito::store::Store;
use connito::store::records::{ScoreRecord, SubmissionRecord, WeightRecord};
use connito::store::tables::{MODELS, SCORES, SUBMISSIONS, WEIGHTS};

#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    pub group: u16,
    pub heldout_loss: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MinerReport {
    pub uid: u16,
    pub hotkey: String,
    pub role: &'static str,
    pub group: u16,
    pub verdict: String,
    pub baseline_loss: Option<f64>,
    pub candidate_loss: Option<f64>,
    pub score: Option<f64>,
    pub weight: f64,
    pub incentive: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CycleReport {
    pub cycle: u64,
    pub global_version: u64,
    pub groups: Vec<GroupReport>,
    pub miners: Vec<MinerReport>,
    /// How the validator's weight setting for this cycle ended.
    pub weights_status: Option<String>,
    /// Actor restarts so far, all daemons.
    pub actor_restarts: u64,
}

pub struct MinerInfo {
    pub hotkey: [u8; 32],
    pub role: &'static str,
    pub group: u16,
}

pub fn build(
    validator: &Store,
    cycle: u64,
    n_groups: usize,
    miners: &[MinerInfo],
    metagraph: &[NeuronInfo],
    actor_restarts: u64,
) -> Result<CycleReport, connito::store::StoreError> {
    let model = validator
        .scan(&MODELS, &[])?
        .into_iter()
        .map(|(_, m)| m)
        .rfind(|m| m.cycle.is_none_or(|c| c <= cycle));
    let weights: Option<WeightRecord> = validator.get(&WEIGHTS, &cycle)?;
    let mut rows = vec![];
    for m in miners {
        let Some(n) = metagraph.iter().find(|n| n.hotkey == m.hotkey) else {
            continue;
        };
        let k = (cycle, n.uid);
        let sub: Option<SubmissionRecord> = validator.get(&SUBMISSIONS, &k)?;
        let score: Option<ScoreRecord> = validator.get(&SCORES, &k)?;
        rows.push(MinerReport {
            uid: n.uid,
            hotkey: connito::submission::ss58(&m.hotkey, 42),
            role: m.role,
            group: m.group,
            verdict: sub.map_or("none", |s| s.verdict.label()).to_string(),
            baseline_loss: score.as_ref().map(|s| s.baseline),
            candidate_loss: score.as_ref().map(|s| s.candidate),
            score: score.as_ref().map(|s| s.score),
            weight: weights
                .as_ref()
                .and_then(|w| w.weights.get(&n.uid).copied())
                .unwrap_or(0.0),
            incentive: n.incentive,
        });
    }
    Ok(CycleReport {
        cycle,
        global_version: model.as_ref().map(|m| m.version).unwrap_or(0),
        groups: (0..n_groups as u16)
            .map(|g| GroupReport {
                group: g,
                heldout_loss: model.as_ref().and_then(|m| m.heldout.get(&g).copied()),
            })
            .collect(),
        miners: rows,
        weights_status: weights.map(|w| w.state.label().to_string()),
        actor_restarts,
    })
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into())
}

pub fn table(r: &CycleReport) -> String {
    let mut s = format!(
        "cycle {}  global v{}  weights: {}  restarts: {}\n",
        r.cycle,
        r.global_version,
        r.weights_status.as_deref().unwrap_or("-"),
        r.actor_restarts
    );
    for g in &r.groups {
        s += &format!(
            "  group {}  held-out loss {}\n",
            g.group,
            opt(g.heldout_loss)
        );
    }
    s += &format!(
        "  {:>3} {:<10} {:>5} {:<16} {:>9} {:>9} {:>8} {:>7} {:>9}  {}\n",
        "uid",
        "role",
        "group",
        "verdict",
        "baseline",
        "candidate",
        "score",
        "weight",
        "incentive",
        "hotkey"
    );
    for m in &r.miners {
        s += &format!(
            "  {:>3} {:<10} {:>5} {:<16} {:>9} {:>9} {:>8} {:>7.4} {:>9.4}  {}\n",
            m.uid,
            m.role,
            m.group,
            m.verdict,
            opt(m.baseline_loss),
            opt(m.candidate_loss),
            opt(m.score),
            m.weight,
            m.incentive,
            m.hotkey
        );
    }
    s
}
