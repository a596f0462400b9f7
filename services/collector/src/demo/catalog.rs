//! What the demo fleet runs: models, hardware and how well they suit each other.

use shared::event::{Capabilities, HardwareKind, ModelFamily};

pub struct Model {
    pub name: &'static str,
    pub family: ModelFamily,
    /// Run time on a CPU worker at speed 1.0, ms.
    pub base_ms: f64,
    /// Chance a run fails on hardware that suits it.
    pub fail_rate: f64,
    /// How often it is submitted, relative to the others.
    pub weight: u32,
}

pub const MODELS: &[Model] = &[
    Model { name: "bert-base", family: ModelFamily::Text, base_ms: 9_000.0, fail_rate: 0.01, weight: 10 },
    Model { name: "t5-base", family: ModelFamily::Text, base_ms: 16_000.0, fail_rate: 0.02, weight: 6 },
    Model { name: "llama-7b", family: ModelFamily::Text, base_ms: 60_000.0, fail_rate: 0.05, weight: 2 },
    Model { name: "vit-large", family: ModelFamily::Vision, base_ms: 24_000.0, fail_rate: 0.02, weight: 7 },
    Model { name: "convnext", family: ModelFamily::Vision, base_ms: 14_000.0, fail_rate: 0.015, weight: 5 },
    Model { name: "detr", family: ModelFamily::Vision, base_ms: 30_000.0, fail_rate: 0.03, weight: 3 },
    Model { name: "clip-b32", family: ModelFamily::Multimodal, base_ms: 18_000.0, fail_rate: 0.02, weight: 5 },
    Model { name: "llava-7b", family: ModelFamily::Multimodal, base_ms: 70_000.0, fail_rate: 0.06, weight: 1 },
    Model { name: "whisper-small", family: ModelFamily::Audio, base_ms: 20_000.0, fail_rate: 0.02, weight: 5 },
    Model { name: "wav2vec2", family: ModelFamily::Audio, base_ms: 15_000.0, fail_rate: 0.02, weight: 3 },
];

/// How much faster than a CPU this hardware runs this family; 0 means it cannot.
pub fn speed(hardware: HardwareKind, family: ModelFamily) -> f64 {
    use HardwareKind::{Cpu, Cuda, Npu, Rocm, Tpu, Webgpu, Webnn};
    use ModelFamily::{Audio, Multimodal, Text, Vision};
    match (hardware, family) {
        (Cpu, Text) => 1.0,
        (Cpu, Vision) => 0.6,
        (Cpu, Audio) => 0.9,
        (Cpu, Multimodal) => 0.5,
        (Cuda, Text) => 4.0,
        (Cuda, Vision) => 6.0,
        (Cuda, Audio) => 4.0,
        (Cuda, Multimodal) => 5.0,
        (Rocm, Text) => 3.0,
        (Rocm, Vision) => 4.5,
        (Rocm, Audio) => 2.5,
        (Rocm, Multimodal) => 3.5,
        (Tpu, Text) => 5.0,
        (Tpu, Vision) => 5.0,
        (Tpu, Audio) => 1.5,
        (Tpu, Multimodal) => 4.0,
        (Webgpu, Text) => 1.5,
        (Webgpu, Vision) => 2.0,
        (Webgpu, Audio) => 0.0,
        (Webgpu, Multimodal) => 1.2,
        (Npu, Text) => 1.5,
        (Npu, Vision) => 2.5,
        (Npu, Audio) => 2.0,
        (Npu, Multimodal) => 0.0,
        (Webnn | HardwareKind::Other, _) => 1.0,
        // The demo's catalogue has no model outside the four families.
        (_, ModelFamily::Other) => 1.0,
    }
}

/// The mean run time of this hardware over the model mix it can run, ms.
pub fn mean_run_ms(hardware: HardwareKind) -> f64 {
    let runnable = MODELS.iter().filter(|model| speed(hardware, model.family) > 0.0);
    let (weighted, weights) = runnable.fold((0.0, 0.0), |(sum, weights), model| {
        (
            sum + f64::from(model.weight) * model.base_ms / speed(hardware, model.family),
            weights + f64::from(model.weight),
        )
    });
    if weights == 0.0 { f64::INFINITY } else { weighted / weights }
}

/// How much likelier a run fails here than on hardware that suits the family.
pub fn fragility(hardware: HardwareKind, family: ModelFamily) -> f64 {
    use HardwareKind::*;
    match (hardware, family) {
        (Webgpu, _) => 3.0,
        (Rocm, ModelFamily::Audio | ModelFamily::Multimodal) => 2.0,
        (Tpu, ModelFamily::Audio) => 2.5,
        (Cpu, ModelFamily::Multimodal) => 1.5,
        _ => 1.0,
    }
}

/// The hardware of worker number `index`: a fixed mix, 35% CPU, 30% CUDA, 10% ROCm,
/// 10% TPU, 10% WebGPU, 5% NPU.
pub fn hardware_of(index: usize) -> HardwareKind {
    use HardwareKind::*;
    const MIX: [HardwareKind; 20] = [
        Cpu, Cuda, Cpu, Cuda, Rocm, Cpu, Cuda, Tpu, Cpu, Webgpu, Cuda, Cpu, Cuda, Rocm, Cpu, Tpu, Cuda, Webgpu, Cpu,
        Npu,
    ];
    MIX[index % MIX.len()]
}

/// Capabilities of worker number `index`, varied but fixed for the index.
pub fn capabilities_of(index: usize, hardware: HardwareKind) -> Capabilities {
    let pick = |options: &[u32]| options[index / 20 % options.len()];
    let (gpu_model, gpu_memory_gb, slots, tags): (Option<&str>, Option<f32>, u32, &[&str]) = match hardware {
        HardwareKind::Cpu => (None, None, pick(&[2, 3, 4]), &["cpu", "avx512"]),
        HardwareKind::Cuda => {
            let (model, memory) = [("Tesla T4", 16.0), ("A10G", 24.0), ("A100", 80.0), ("H100", 80.0)][index / 20 % 4];
            (Some(model), Some(memory), pick(&[3, 4]), &["cuda", "vision", "fp16"])
        }
        HardwareKind::Rocm => (Some("MI250"), Some(64.0), 3, &["rocm", "fp16"]),
        HardwareKind::Tpu => (Some("TPU v4"), Some(32.0), 4, &["tpu", "bf16"]),
        HardwareKind::Webgpu => (Some("browser WebGPU"), Some(8.0), 1, &["webgpu", "browser"]),
        HardwareKind::Npu => (Some("Hexagon NPU"), Some(8.0), 2, &["npu", "int8"]),
        _ => (None, None, 1, &[]),
    };
    // Workers sit in three pools, as a fleet spread over sites or racks would.
    let pool = ["pool-a", "pool-b", "pool-c"][index / 3 % 3];
    Capabilities {
        hardware,
        cpu_cores: pick(&[16, 32, 64]),
        memory_gb: pick(&[64, 128, 256]) as f32,
        gpu_model: gpu_model.map(str::to_owned),
        gpu_memory_gb,
        slots,
        tags: tags.iter().copied().chain([pool]).map(str::to_owned).collect(),
    }
}
