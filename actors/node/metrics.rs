//! Per-daemon Prometheus metrics. Each daemon owns one recorder (no global state), so several
//! daemons in one localnet process each serve their own `/metrics`.
//!
//! Names follow `connito_<component>_<what>_<unit>`; counters end in `_total`; labels only from
//! small fixed sets. `grafana/README.md` lists every metric; `grafana/check.py` checks the
//! dashboards against [`ALL`].

use std::sync::Arc;

use metrics::{
    Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

/// Every metric this runtime declares: (name, help).
pub const ALL: &[(&str, &str)] = &[
    (
        "connito_build_info",
        "Build information; value 1, label version",
    ),
    (
        "connito_chain_block_height",
        "Latest block seen by ChainSync",
    ),
    (
        "connito_chain_cycle",
        "Current cycle (block / cycle length)",
    ),
    (
        "connito_chain_phase",
        "Current phase index 0..8 (distribute .. validator_commit2)",
    ),
    ("connito_intake_submissions_total", "Submissions by verdict"),
    (
        "connito_pol_evaluation_seconds",
        "Seconds per Proof-of-Loss model evaluation",
    ),
    (
        "connito_pol_best_score",
        "Best Proof-of-Loss score of the last round, per group",
    ),
    (
        "connito_trainer_loss",
        "Loss of the last training step (nats)",
    ),
    ("connito_trainer_tokens_total", "Tokens trained on"),
    (
        "connito_trainer_grad_norm",
        "Global gradient norm of the last step, before clipping",
    ),
    (
        "connito_trainer_aux_loss",
        "Load-balancing auxiliary loss of the last step (1 = balanced)",
    ),
    (
        "connito_trainer_learning_rate",
        "Learning rate of the inner optimizer",
    ),
    (
        "connito_trainer_expert_load",
        "Fraction of routing weight per expert, by layer and expert",
    ),
    (
        "connito_trainer_steps_total",
        "Training steps by status (ok, skipped)",
    ),
    (
        "connito_weights_set_total",
        "Weight-commit state changes by status (ok, unknown, resolved, rejected)",
    ),
    (
        "connito_supervisor_restarts_total",
        "Actor restarts by actor",
    ),
    (
        "connito_aggregator_global_version",
        "Version of the latest global model",
    ),
    (
        "connito_aggregator_heldout_loss",
        "Held-out loss of the global model per group: the group's partial model (nats)",
    ),
    (
        "connito_publisher_commits_total",
        "Miner commitments by step (hash, location) and status (ok, error, retry)",
    ),
];

#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
}

fn meta() -> Metadata<'static> {
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()))
}

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::new(*k, v.to_string()))
        .collect();
    Key::from_parts(name, labels)
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ])
            .expect("bucket list is not empty")
            .build_recorder();
        for (name, help) in ALL {
            let unit = if name.ends_with("_seconds") {
                Some(Unit::Seconds)
            } else {
                None
            };
            let n = KeyName::from_const_str(name);
            let h = SharedString::const_str(help);
            if name.ends_with("_total") {
                recorder.describe_counter(n, unit, h);
            } else if name.ends_with("_seconds") {
                recorder.describe_histogram(n, unit, h);
            } else {
                recorder.describe_gauge(n, unit, h);
            }
        }
        let m = Self {
            recorder: Arc::new(recorder),
        };
        m.gauge(
            "connito_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
        )
        .set(1.0);
        m
    }

    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Counter {
        self.recorder.register_counter(&key(name, labels), &meta())
    }

    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Gauge {
        self.recorder.register_gauge(&key(name, labels), &meta())
    }

    pub fn histogram(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Histogram {
        self.recorder
            .register_histogram(&key(name, labels), &meta())
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        self.recorder.handle().render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemons_have_separate_registries() {
        let a = Metrics::new();
        let b = Metrics::new();
        a.counter("connito_weights_set_total", &[("status", "ok")])
            .increment(2);
        assert!(
            a.render()
                .contains("connito_weights_set_total{status=\"ok\"} 2")
        );
        assert!(
            !b.render()
                .contains("connito_weights_set_total{status=\"ok\"}")
        );
        assert!(b.render().contains("connito_build_info"));
    }

    #[test]
    fn names_follow_the_rules() {
        for (name, _) in ALL {
            assert!(name.starts_with("connito_"), "{name}");
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
        }
    }
}

#[cfg(test)]
mod dashboard_tests {
    use super::ALL;

    /// Every metric a dashboard queries is one this runtime declares.
    #[test]
    fn dashboards_query_only_declared_metrics() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/grafana/dashboards");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut rest = text.as_str();
            while let Some(i) = rest.find("connito_") {
                let tail = &rest[i..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                    .unwrap_or(tail.len());
                let mut name = &tail[..end];
                for suffix in ["_bucket", "_sum", "_count"] {
                    name = name.strip_suffix(suffix).unwrap_or(name);
                }
                if !name.starts_with("connito_validator")
                    && !name.starts_with("connito_miner")
                    && name != "connito_"
                {
                    assert!(
                        ALL.iter().any(|(n, _)| *n == name),
                        "{} queries undeclared metric {name}",
                        path.display()
                    );
                    seen += 1;
                }
                rest = &tail[end..];
            }
        }
        assert!(seen > 10, "dashboards reference only {seen} metrics");
    }
}
