//! A legacy `.pt` shard read through the restricted reader ([`super::pt`]) into a [`Shard`]:
//! dtypes f16, bf16 and f32; anything the reader refuses (code, non-tensor values, other
//! dtypes) is `unsupported_format`, a broken container `malformed`.

use super::pt::{PtDtype, PtError, PtLimits, read_pt};
use super::shard::{RawTensor, Shard, ShardDtype};
use super::verify::{Refused, shard_refusal};
use crate::submission::Verdict;

/// The shard in `bytes`, reading at most `max_bytes` of announced tensor data.
pub(super) fn read(bytes: &[u8], max_bytes: usize) -> Result<Shard, Refused> {
    let limits = PtLimits {
        max_total_bytes: max_bytes,
        ..PtLimits::default()
    };
    let tensors = read_pt(bytes, &limits).map_err(refusal)?;
    let mut out = Vec::with_capacity(tensors.len());
    for t in tensors {
        let dtype = match t.dtype {
            PtDtype::F16 => ShardDtype::F16,
            PtDtype::BF16 => ShardDtype::BF16,
            PtDtype::F32 => ShardDtype::F32,
            other => {
                return Err(Refused {
                    verdict: Verdict::UnsupportedFormat,
                    reason: format!(
                        "tensor {}: dtype {other:?} (f16, bf16 and f32 are read)",
                        t.name
                    ),
                });
            }
        };
        let raw = RawTensor {
            dtype,
            shape: t.shape,
            data: t.data,
        };
        out.push((t.name, raw));
    }
    Shard::from_tensors(out).map_err(shard_refusal)
}

fn refusal(e: PtError) -> Refused {
    let verdict = match &e {
        PtError::TooLarge { .. } => Verdict::TooLarge,
        PtError::NotAZip(_) | PtError::MissingEntry(_) | PtError::Truncated(_) => {
            Verdict::Malformed
        }
        _ => Verdict::UnsupportedFormat,
    };
    Refused {
        verdict,
        reason: format!("legacy .pt: {e}"),
    }
}
