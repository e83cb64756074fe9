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
