//! The compute device, chosen once at the edge.

use burn::tensor::Device;
use burn::tensor::wgpu::WgpuBackend;
use connito::config::Backend;
use connito::model::WeightDtype;

/// Adapter kinds that are real GPUs (lavapipe and other software rasterizers report `Cpu`).
pub fn is_real_gpu(kind: burn::tensor::wgpu::wgpu::DeviceType) -> bool {
    use burn::tensor::wgpu::wgpu::DeviceType;
    matches!(
        kind,
        DeviceType::DiscreteGpu | DeviceType::IntegratedGpu | DeviceType::VirtualGpu
    )
}

/// wgpu pinned to Vulkan (Metal on macOS): never the OpenGL fallback, which deadlocks on llvmpipe.
/// The runtime can be initialized once per process, so the outcome is kept.
fn init_wgpu() -> Result<(Device, burn::tensor::wgpu::wgpu::AdapterInfo), String> {
    static WGPU: std::sync::OnceLock<
        Result<(Device, burn::tensor::wgpu::wgpu::AdapterInfo), String>,
    > = std::sync::OnceLock::new();
    WGPU.get_or_init(init_wgpu_once).clone()
}

fn init_wgpu_once() -> Result<(Device, burn::tensor::wgpu::wgpu::AdapterInfo), String> {
    let api = if cfg!(target_os = "macos") {
        WgpuBackend::Metal
    } else {
        WgpuBackend::Vulkan
    };
    let (device, setup) = Device::wgpu_options()
        .graphics_api(api)
        .init_with_setup()
        .map_err(|e| {
            format!(
                "wgpu needs a {api:?} adapter and none came up ({e}). On Debian without a GPU, \
             `apt-get install mesa-vulkan-drivers` provides lavapipe; or set backend = \"cpu\""
            )
        })?;
    let info = setup.adapter.get_info();
    tracing::info!(adapter = %info.name, kind = ?info.device_type, api = ?setup.backend, "wgpu device");
    Ok((device, info))
}

/// The device for `backend`. `auto` takes a real GPU through wgpu when there is one, else burn's
/// Flex CPU backend (a software Vulkan adapter is slower than Flex). No adapter is a clear
/// error for `wgpu`, never a panic.
/// [`device`], refused where it cannot store weights as `dtype` (lavapipe has no bf16: a bf16
/// upload there fails inside the runtime and later results are garbage, so it is an error up
/// front).
pub fn device_for(backend: Backend, dtype: WeightDtype) -> Result<Device, String> {
    let d = device(backend)?;
    if d.supports_dtype(dtype.float()) {
        Ok(d)
    } else {
        Err(format!(
            "the {backend:?} device cannot store {} weights; use weight_dtype f16 or f32",
            dtype.name()
        ))
    }
}

pub fn device(backend: Backend) -> Result<Device, String> {
    match backend {
        Backend::Cpu => Ok(Device::flex()),
        #[cfg(feature = "cuda")]
        Backend::Cuda => Ok(Device::cuda(0)),
        #[cfg(not(feature = "cuda"))]
        Backend::Cuda => Err("this connito was built without CUDA; rebuild it with \
             `cargo build --release --features cuda` (needs the CUDA driver), or use \
             backend = \"wgpu\""
            .into()),
        Backend::Wgpu => init_wgpu().map(|(d, _)| d),
        Backend::Auto => match init_wgpu() {
            Ok((d, info)) if is_real_gpu(info.device_type) => Ok(d),
            Ok((_, info)) => {
                tracing::info!(adapter = %info.name, "backend auto: no real GPU (software adapter); using the CPU backend");
                Ok(Device::flex())
            }
            Err(e) => {
                tracing::info!("backend auto: {e}; using the CPU backend");
                Ok(Device::flex())
            }
        },
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
    fn only_real_gpus_count_for_auto() {
        use burn::tensor::wgpu::wgpu::DeviceType;
        assert!(is_real_gpu(DeviceType::DiscreteGpu));
        assert!(is_real_gpu(DeviceType::IntegratedGpu));
        assert!(
            !is_real_gpu(DeviceType::Cpu),
            "lavapipe/llvmpipe is not a GPU"
        );
        assert!(!is_real_gpu(DeviceType::Other));
        assert!(device(Backend::Auto).is_ok(), "auto always yields a device");
    }

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
        let r = cfg.routing(None);
        let l_cpu: f32 = loss_on_batch(&cfg, &to_params(&sd, &cpu), &batch, &r, &cpu).into_scalar();
        let l_gpu: f32 = loss_on_batch(&cfg, &to_params(&sd, &gpu), &batch, &r, &gpu).into_scalar();
        assert!(
            ((l_cpu - l_gpu) / l_cpu).abs() < 1e-4,
            "cpu {l_cpu} vs wgpu {l_gpu}"
        );
    }
}
