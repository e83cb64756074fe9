//! The compute device, chosen once at the edge.

use burn::tensor::Device;
use burn::tensor::wgpu::WgpuBackend;
use connito::config::Backend;

/// The device for `backend`. wgpu is pinned to Vulkan (Metal on macOS): it never falls back to
/// OpenGL, which deadlocks on llvmpipe. No such adapter is a clear error, not a panic.
pub fn device(backend: Backend) -> Result<Device, String> {
    match backend {
        Backend::Cpu => Ok(Device::flex()),
        Backend::Wgpu => {
            let api = if cfg!(target_os = "macos") {
                WgpuBackend::Metal
            } else {
                WgpuBackend::Vulkan
            };
            let (device, setup) = Device::wgpu_options().graphics_api(api).init_with_setup().map_err(|e| {
                format!(
                    "backend = \"wgpu\" needs a {api:?} adapter and none came up ({e}). On Debian without a GPU, \
                     `apt-get install mesa-vulkan-drivers` provides lavapipe; or set backend = \"cpu\""
                )
            })?;
            let info = setup.adapter.get_info();
            tracing::info!(adapter = %info.name, kind = ?info.device_type, api = ?setup.backend, "wgpu device");
            Ok(device)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connito::data::{Domain, Sampler, Split};
    use connito::model::{ModelConfig, init_state_dict, loss_on_batch, to_params};

    /// The same model and batch on wgpu (Vulkan; lavapipe in CI) and on the CPU backend agree.
    /// Without a Vulkan adapter the test says so and passes, except in CI, where `.ci/run`
    /// installs lavapipe and a missing adapter is a failure.
    #[test]
    fn wgpu_and_cpu_losses_agree() {
        let gpu = match device(Backend::Wgpu) {
            Ok(d) => d,
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("skipping wgpu test: {e}");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let cfg = ModelConfig::tiny();
        let sd = init_state_dict(&cfg, 4);
        let batch =
            Sampler::new(Domain::Brackets, 4, Split::Heldout, 8, 0).next_batch(4, cfg.seq_len);
        let cpu = Device::flex();
        let l_cpu: f32 = loss_on_batch(&cfg, &to_params(&sd, &cpu), &batch, &cpu).into_scalar();
        let l_gpu: f32 = loss_on_batch(&cfg, &to_params(&sd, &gpu), &batch, &gpu).into_scalar();
        assert!(
            ((l_cpu - l_gpu) / l_cpu).abs() < 1e-4,
            "cpu {l_cpu} vs wgpu {l_gpu}"
        );
    }
}
