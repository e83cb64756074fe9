//! `connito model inspect` of a DeepSeek-V2 model (parameters and memory, full and partial), and
//! `connito model loss`: the mean next-token cross-entropy of a Hugging Face DeepSeek-V2 model
//! directory on rows of token ids, so a conversion or a checkpoint can be checked against
//! another framework.

use std::path::Path;

use anyhow::Context as _;
use burn::tensor::{Int, Tensor, TensorData};
use connito::config::Backend;
use connito::model::dsv2::{DsConfig, Routing, forward, parameter_counts, row_losses, weights};
use connito::model::{WeightDtype, to_params_as};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct LossReport {
    /// Mean over every predicted token of every row (no auxiliary loss).
    pub loss: f64,
    /// Each row's mean over its predicted tokens (a row of `n` ids predicts `n − 1`).
    pub rows: Vec<f64>,
    pub tokens: usize,
    pub backend: String,
    /// How the weights were stored on the device.
    pub weight_dtype: String,
}

/// Reads `tokens` (a JSON array of arrays of token ids, each at least 2 long) and evaluates
/// the model in `model_dir` on them, one row at a time.
pub fn loss(
    model_dir: &Path,
    tokens: &Path,
    backend: Backend,
    dtype: WeightDtype,
) -> anyhow::Result<LossReport> {
    let (cfg, sd) = weights::load_dir(model_dir, &Routing::all())
        .with_context(|| format!("loading the model in {}", model_dir.display()))?;
    let text =
        std::fs::read_to_string(tokens).with_context(|| format!("reading {}", tokens.display()))?;
    let rows: Vec<Vec<u64>> = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a JSON array of arrays of token ids",
            tokens.display()
        )
    })?;
    anyhow::ensure!(!rows.is_empty(), "{} holds no rows", tokens.display());
    for (i, r) in rows.iter().enumerate() {
        anyhow::ensure!(
            r.len() >= 2,
            "row {i} has {} tokens; at least 2 are needed",
            r.len()
        );
        if let Some(t) = r.iter().find(|t| **t >= cfg.vocab_size as u64) {
            anyhow::bail!(
                "row {i} holds token {t}, outside the vocabulary of {}",
                cfg.vocab_size
            );
        }
    }
    let device = crate::node::backend::device_for(backend, dtype).map_err(anyhow::Error::msg)?;
    let params = to_params_as(&sd, &device, dtype);
    let mut out = vec![];
    for r in &rows {
        let ids: Vec<i64> = r.iter().map(|t| *t as i64).collect();
        let inputs = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, r.len()]), &device);
        let logits = forward(&cfg, &params, inputs.clone(), &Routing::all()).logits;
        let l: f32 = row_losses(logits, inputs).into_scalar();
        out.push(f64::from(l));
    }
    let counts: Vec<usize> = rows.iter().map(|r| r.len() - 1).collect();
    let tokens: usize = counts.iter().sum();
    let loss = out
        .iter()
        .zip(&counts)
        .map(|(l, n)| l * *n as f64)
        .sum::<f64>()
        / tokens as f64;
    Ok(LossReport {
        loss,
        rows: out,
        tokens,
        backend: format!("{backend:?}").to_lowercase(),
        weight_dtype: dtype.name().into(),
    })
}

/// Parameters and weight memory of one model.
#[derive(Debug, Serialize)]
pub struct Size {
    pub parameters: usize,
    pub routed_expert_parameters: usize,
    pub bytes_f32: usize,
    pub bytes_bf16: usize,
}

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub full: Size,
    /// The partial model of one expert group: every shared weight and the group's experts.
    pub partial: Size,
    pub group: String,
}

fn size(cfg: &DsConfig, routing: &Routing) -> Size {
    let (parameters, routed) = parameter_counts(cfg, routing);
    Size {
        parameters,
        routed_expert_parameters: routed,
        bytes_f32: 4 * parameters,
        bytes_bf16: 2 * parameters,
    }
}

/// The sizes of a DeepSeek-V2 model from a preset or a model directory's config.json.
pub fn inspect_dsv2(
    preset: Option<&str>,
    model: Option<&Path>,
    (group, groups): (usize, usize),
    assignment: Option<&Path>,
) -> anyhow::Result<Inspection> {
    let cfg = match (preset, model) {
        (Some(p), _) => DsConfig::preset(p)?,
        (None, Some(dir)) => weights::read_config(dir)?,
        (None, None) => anyhow::bail!("give a model FILE, --preset or --model DIR"),
    };
    let (routing, name) = match assignment {
        Some(f) => {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            (
                Routing::from_assignment_json(&cfg, &text)?,
                f.display().to_string(),
            )
        }
        None => (
            Routing::contiguous(&cfg, group, groups)?,
            format!("{group} of {groups} contiguous"),
        ),
    };
    Ok(Inspection {
        full: size(&cfg, &Routing::all()),
        partial: size(&cfg, &routing),
        group: name,
    })
}
