//! Which routed experts a token goes to, from its router probabilities (a softmax over all
//! `n_routed_experts`). Decided on the host, so the rule is plain Rust with a table test; the
//! chosen probabilities are then gathered from the router's tensor, so gradients reach it.
//!
//! - `greedy`: the `num_experts_per_tok` highest probabilities.
//! - `group_limited_greedy`: experts in `n_group` contiguous groups, a group scored by its best
//!   expert; experts outside the `topk_group` best groups are set to 0, then greedy.
//! - A partial model (one expert group of SN102, `allowed`): experts outside the group are
//!   excluded before anything else (as Connito sets their scores to -1e4 after the softmax);
//!   the chosen experts keep their probabilities from the softmax over all experts (no
//!   renormalisation over the group), and top-k stays `num_experts_per_tok`, so a group needs at
//!   least that many experts in every MoE layer.
//!
//! Ties go to the lower expert index.

use super::config::TopkMethod;

/// The experts chosen for one token, best first. `probs` has one value per routed expert.
pub fn choose(probs: &[f32], k: usize, method: TopkMethod, allowed: Option<&[bool]>) -> Vec<usize> {
    let e = probs.len();
    let ok = |i: usize| allowed.is_none_or(|a| a[i]);
    let mut score: Vec<f32> = (0..e)
        .map(|i| if ok(i) { probs[i] } else { f32::NEG_INFINITY })
        .collect();
    if let TopkMethod::GroupLimited {
        n_group,
        topk_group,
    } = method
    {
        let size = e / n_group;
        let best: Vec<f32> = (0..n_group)
            .map(|g| {
                score[g * size..(g + 1) * size]
                    .iter()
                    .copied()
                    .fold(f32::NEG_INFINITY, f32::max)
            })
            .collect();
        let kept = top(&best, topk_group);
        for (i, s) in score.iter_mut().enumerate() {
            if !kept.contains(&(i / size)) && s.is_finite() {
                *s = 0.0;
            }
        }
    }
    top(&score, k)
}

/// Indices of the `k` largest values, largest first; ties to the lower index.
fn top(values: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: TopkMethod = TopkMethod::Greedy;

    /// name, probabilities, k, method, allowed experts, the choice.
    type Row<'a> = (
        &'a str,
        &'a [f32],
        usize,
        TopkMethod,
        Option<&'a [bool]>,
        &'a [usize],
    );

    #[test]
    #[rustfmt::skip]
    fn routing_table() {
        let grouped = TopkMethod::GroupLimited { n_group: 2, topk_group: 1 };
        let p = [0.1, 0.3, 0.05, 0.25, 0.2, 0.1];
        let cases: &[Row] = &[
            ("greedy top-2", &p, 2, G, None, &[1, 3]),
            ("greedy top-1", &p, 1, G, None, &[1]),
            ("a tie goes to the lower index", &[0.25, 0.25, 0.5], 2, G, None, &[2, 0]),
            // groups {0,1,2} best 0.3, {3,4,5} best 0.25: only the first competes.
            ("group-limited", &p, 2, grouped, None, &[1, 0]),
            ("masked to a partial model", &p, 2, G, Some(&[false, false, true, true, true, false]), &[3, 4]),
            ("masked, then grouped", &p, 2, grouped, Some(&[true, false, true, true, true, true]), &[3, 4]),
        ];
        for (name, probs, k, m, allowed, want) in cases {
            assert_eq!(choose(probs, *k, *m, *allowed), want.to_vec(), "{name}");
        }
    }
}
