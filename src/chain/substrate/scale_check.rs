//! Checks that bytes are exactly one SCALE value of a metadata type: walks the type registry and
//! consumes the encoding (composites field by field, a variant's index then its fields,
//! sequences by their compact length, primitives by size). Devnet uses it to prove that what it
//! serves is encoded with the runtime's own types.

use parity_scale_codec::{Compact, Decode};
use scale_info::{PortableRegistry, TypeDef, TypeDefPrimitive};

/// Deepest nesting followed (the registry's types are finite, but a malicious loop must stop).
const MAX_DEPTH: usize = 64;

/// Why bytes are not one value of the type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaleCheckError {
    #[error("type {0} is not in the registry")]
    UnknownType(u32),
    #[error("type {ty}: input ends early")]
    Truncated { ty: u32 },
    #[error("type {ty}: no variant with index {index}")]
    NoSuchVariant { ty: u32, index: u8 },
    #[error("type {ty}: invalid value ({what})")]
    Invalid { ty: u32, what: &'static str },
    #[error("{0} bytes left over after the value")]
    LeftOver(usize),
    #[error("nesting deeper than {MAX_DEPTH}")]
    TooDeep,
}

fn take<'a>(bytes: &mut &'a [u8], n: usize, ty: u32) -> Result<&'a [u8], ScaleCheckError> {
    if bytes.len() < n {
        return Err(ScaleCheckError::Truncated { ty });
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

fn compact_len(bytes: &mut &[u8], ty: u32) -> Result<usize, ScaleCheckError> {
    let n = Compact::<u64>::decode(bytes).map_err(|_| ScaleCheckError::Truncated { ty })?;
    usize::try_from(n.0).map_err(|_| ScaleCheckError::Invalid { ty, what: "length" })
}

fn primitive(p: &TypeDefPrimitive, bytes: &mut &[u8], ty: u32) -> Result<(), ScaleCheckError> {
    let size = match p {
        TypeDefPrimitive::Bool => {
            let b = take(bytes, 1, ty)?[0];
            return (b <= 1)
                .then_some(())
                .ok_or(ScaleCheckError::Invalid { ty, what: "bool" });
        }
        TypeDefPrimitive::Str => {
            let n = compact_len(bytes, ty)?;
            let s = take(bytes, n, ty)?;
            return std::str::from_utf8(s)
                .map(|_| ())
                .map_err(|_| ScaleCheckError::Invalid { ty, what: "utf-8" });
        }
        TypeDefPrimitive::U8 | TypeDefPrimitive::I8 => 1,
        TypeDefPrimitive::U16 | TypeDefPrimitive::I16 => 2,
        TypeDefPrimitive::U32 | TypeDefPrimitive::I32 | TypeDefPrimitive::Char => 4,
        TypeDefPrimitive::U64 | TypeDefPrimitive::I64 => 8,
        TypeDefPrimitive::U128 | TypeDefPrimitive::I128 => 16,
        TypeDefPrimitive::U256 | TypeDefPrimitive::I256 => 32,
    };
    take(bytes, size, ty).map(|_| ())
}

fn walk(
    types: &PortableRegistry,
    ty: u32,
    bytes: &mut &[u8],
    depth: usize,
) -> Result<(), ScaleCheckError> {
    if depth > MAX_DEPTH {
        return Err(ScaleCheckError::TooDeep);
    }
    let t = types.resolve(ty).ok_or(ScaleCheckError::UnknownType(ty))?;
    let each = |id: u32, bytes: &mut &[u8]| walk(types, id, bytes, depth + 1);
    match &t.type_def {
        TypeDef::Composite(c) => c.fields.iter().try_for_each(|f| each(f.ty.id, bytes)),
        TypeDef::Variant(v) => {
            let index = take(bytes, 1, ty)?[0];
            let var = v
                .variants
                .iter()
                .find(|var| var.index == index)
                .ok_or(ScaleCheckError::NoSuchVariant { ty, index })?;
            var.fields.iter().try_for_each(|f| each(f.ty.id, bytes))
        }
        TypeDef::Sequence(s) => {
            let n = compact_len(bytes, ty)?;
            (0..n).try_for_each(|_| each(s.type_param.id, bytes))
        }
        TypeDef::Array(a) => (0..a.len).try_for_each(|_| each(a.type_param.id, bytes)),
        TypeDef::Tuple(t) => t.fields.iter().try_for_each(|f| each(f.id, bytes)),
        TypeDef::Primitive(p) => primitive(p, bytes, ty),
        TypeDef::Compact(_) => Compact::<u128>::decode(bytes)
            .map(|_| ())
            .map_err(|_| ScaleCheckError::Truncated { ty }),
        TypeDef::BitSequence(_) => {
            let bits = compact_len(bytes, ty)?;
            take(bytes, bits.div_ceil(8), ty).map(|_| ())
        }
    }
}

/// `Ok` if `bytes` are exactly one value of type `ty`.
pub fn check_exact(types: &PortableRegistry, ty: u32, bytes: &[u8]) -> Result<(), ScaleCheckError> {
    let mut rest = bytes;
    walk(types, ty, &mut rest, 0)?;
    match rest.len() {
        0 => Ok(()),
        n => Err(ScaleCheckError::LeftOver(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::substrate::metadata::ChainMetadata;
    use parity_scale_codec::Encode;

    fn value_ty(pallet: &str, item: &str) -> u32 {
        let (_, e) = ChainMetadata::finney().storage(pallet, item).unwrap();
        match &e.ty {
            frame_metadata::v14::StorageEntryType::Plain(t) => t.id,
            frame_metadata::v14::StorageEntryType::Map { value, .. } => value.id,
        }
    }

    #[test]
    fn storage_defaults_are_values_of_their_types() {
        let m = ChainMetadata::finney();
        let mut checked = 0;
        for p in &m.v16().pallets {
            for e in p.storage.iter().flat_map(|s| &s.entries) {
                let ty = match &e.ty {
                    frame_metadata::v14::StorageEntryType::Plain(t) => t.id,
                    frame_metadata::v14::StorageEntryType::Map { value, .. } => value.id,
                };
                let optional = matches!(
                    e.modifier,
                    frame_metadata::v14::StorageEntryModifier::Optional
                );
                if optional {
                    continue;
                }
                check_exact(m.types(), ty, &e.default)
                    .unwrap_or_else(|err| panic!("{}.{}: {err}", p.name, e.name));
                checked += 1;
            }
        }
        assert!(checked > 200, "{checked}");
    }

    #[test]
    fn values_must_fit_exactly() {
        let types = ChainMetadata::finney().types();
        let weights = value_ty("SubtensorModule", "Weights");
        let w: Vec<(u16, u16)> = vec![(1, 0), (2, 65535)];
        assert_eq!(check_exact(types, weights, &w.encode()), Ok(()));
        let mut extra = w.encode();
        extra.push(0);
        assert_eq!(
            check_exact(types, weights, &extra),
            Err(ScaleCheckError::LeftOver(1))
        );
        let short = &w.encode()[..4];
        assert!(matches!(
            check_exact(types, weights, short),
            Err(ScaleCheckError::Truncated { .. })
        ));
        let permit = value_ty("SubtensorModule", "ValidatorPermit");
        assert!(matches!(
            check_exact(types, permit, &[4, 2]),
            Err(ScaleCheckError::Invalid { what: "bool", .. })
        ));
        assert_eq!(
            check_exact(types, u32::MAX, &[]),
            Err(ScaleCheckError::UnknownType(u32::MAX))
        );
    }
}
