//! Agreement with Hugging Face `transformers`: each fixture in tests/fixtures/dsv2/ is a random
//! tiny DeepSeek-V2 saved with `save_pretrained` and the logits, loss and one expert tensor's
//! gradient `transformers` computed for a fixed batch (scripts/dsv2_fixtures.py writes them;
//! this test needs no Python). Logits and loss must agree within 1e-4, the gradient within 1e-3.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use connito::model::dsv2::{Routing, forward, next_token_loss, weights};
use connito::model::to_params;
use serde_json::Value;

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dsv2");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.json").exists())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 5, "fixtures in {}", root.display());
    dirs
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn to_vec(t: Tensor<2>) -> Vec<f32> {
    t.to_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

#[test]
fn every_fixture_agrees_with_transformers() {
    for dir in fixtures() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let exp: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
                .unwrap();
        let (cfg, sd) = weights::load_dir(&dir, &Routing::all()).unwrap();
        let rows: Vec<Vec<i64>> = serde_json::from_value(exp["input_ids"].clone()).unwrap();
        let (b, t) = (rows.len(), rows[0].len());
        let ids: Vec<i64> = rows.concat();
        let device = Device::flex();
        let ad = device.clone().autodiff();
        let inputs = Tensor::<2, Int>::from_data(TensorData::new(ids, [b, t]), &ad);
        let grad_name = exp["grad_name"].as_str().unwrap().to_string();
        let mut params = to_params(&sd, &device);
        let leaf = params[&grad_name].clone().autodiff().require_grad();
        params.insert(grad_name.clone(), leaf.clone());
        let out = forward(&cfg, &params, inputs.clone(), &Routing::all());
        let logits = to_vec(out.logits.clone().inner());
        let loss = next_token_loss(out.logits, inputs);
        let loss_value: f32 = loss.clone().inner().into_scalar();
        let grads = loss.backward();
        let grad = to_vec(leaf.grad(&grads).expect("the expert is on the loss's path"));
        let d_logits = max_diff(&logits, &floats(&exp["logits"]));
        let d_loss = (loss_value - exp["loss"].as_f64().unwrap() as f32).abs();
        let d_grad = max_diff(&grad, &floats(&exp["grad"]));
        eprintln!(
            "{name}: max |Δlogit| {d_logits:.2e}, |Δloss| {d_loss:.2e}, max |Δgrad| {d_grad:.2e} (transformers {})",
            exp["transformers"]
        );
        assert!(d_logits < 1e-4, "{name}: logits differ by {d_logits}");
        assert!(d_loss < 1e-4, "{name}: loss differs by {d_loss}");
        assert!(d_grad < 1e-3, "{name}: gradient differs by {d_grad}");
    }
}

/// `connito model loss` on a fixture gives `transformers`' loss on the CPU and on wgpu (Vulkan;
/// lavapipe in CI); bad rows are refused.
#[test]
fn model_loss_cli_matches_transformers_and_refuses_bad_rows() {
    // The last fixture is stored in bf16, the first in f32 (where half precision rounds).
    let (dirs, tmp) = (fixtures(), tempfile::tempdir().unwrap());
    let expected = |dir: &Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap()
    };
    let run_in = |dir: &Path, rows: &str, backend: &str, dtype: &str| {
        let f = tmp.path().join("rows.json");
        std::fs::write(&f, rows).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_connito"))
            .args(["model", "loss", "--json", "--backend", backend])
            .args(["--weight-dtype", dtype, "--model"])
            .arg(dir)
            .arg("--tokens")
            .arg(&f)
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap()
    };
    // Half-precision weights (computed in f32) round each weight: bf16 keeps 8 bits of
    // mantissa, f16 11, so their losses are close, not equal.
    for (dir, backend, dtype, tol) in [
        (&dirs[dirs.len() - 1], "cpu", "f32", 1e-4),
        (&dirs[dirs.len() - 1], "wgpu", "f32", 1e-4),
        (&dirs[0], "cpu", "f32", 1e-4),
        (&dirs[0], "cpu", "bf16", 3e-2),
        (&dirs[0], "cpu", "f16", 5e-3),
        (&dirs[0], "wgpu", "f16", 5e-3),
    ] {
        let exp = expected(dir);
        let out = run_in(dir, &exp["input_ids"].to_string(), backend, dtype);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        let d = (r["loss"].as_f64().unwrap() - exp["loss"].as_f64().unwrap()).abs();
        let name = dir.file_name().unwrap().to_string_lossy();
        eprintln!("{name} on {backend}, {dtype} weights: |loss - transformers| = {d:.2e}");
        assert!(d < tol, "{backend} {dtype}: {r} against {}", exp["loss"]);
        assert_eq!(r["rows"].as_array().unwrap().len(), 2);
        assert_eq!(r["weight_dtype"], dtype);
    }
    // bf16 on wgpu: right where the adapter stores bf16, refused up front where it cannot
    // (lavapipe), never a wrong loss.
    let exp = expected(&dirs[0]);
    let out = run_in(&dirs[0], &exp["input_ids"].to_string(), "wgpu", "bf16");
    if out.status.success() {
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        let d = (r["loss"].as_f64().unwrap() - exp["loss"].as_f64().unwrap()).abs();
        assert!(d < 3e-2, "wgpu bf16: {r} against {}", exp["loss"]);
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot store bf16 weights"), "{err}");
    }
    let last = &dirs[dirs.len() - 1];
    let run = |rows: &str| run_in(last, rows, "cpu", "f32");
    for (rows, phrase) in [
        ("[[1]]", "at least 2"),
        ("[[1, 64]]", "outside the vocabulary"),
        ("[]", "no rows"),
        ("{\"a\": 1}", "not a JSON array"),
    ] {
        let out = run(rows);
        assert!(!out.status.success(), "{rows}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(phrase), "{rows}: {err}");
    }
}

/// `connito model inspect --model DIR` sizes the full model and one group's partial model.
#[test]
fn model_inspect_sizes_a_partial_model() {
    // Four experts, two per token: two groups of two.
    let dir = fixtures()
        .into_iter()
        .find(|d| d.ends_with("plain"))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let assignment = tmp.path().join("expert_assignment.json");
    std::fs::write(
        &assignment,
        r#"{"1": [[0, 3], [1, 1]], "2": [[0, 2], [1, 0]]}"#,
    )
    .unwrap();
    let run = |extra: &[&str]| -> Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_connito"))
            .args(["model", "inspect", "--model"])
            .arg(&dir)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (cfg, sd) = weights::load_dir(&dir, &Routing::all()).unwrap();
    let total: usize = sd.values().map(|t| t.data.len()).sum();
    let contiguous = run(&["--groups", "2"]);
    assert_eq!(contiguous["full"]["parameters"], total);
    let by_file = run(&["--assignment", assignment.to_str().unwrap()]);
    assert_eq!(
        by_file["partial"], contiguous["partial"],
        "two experts per MoE layer either way"
    );
    let expert = 3 * cfg.moe_intermediate_size * cfg.hidden_size;
    let moe_layers = (0..cfg.num_hidden_layers)
        .filter(|l| cfg.is_moe_layer(*l))
        .count();
    assert_eq!(
        contiguous["partial"]["routed_expert_parameters"],
        moe_layers * (cfg.n_routed_experts / 2) * expert
    );
}
