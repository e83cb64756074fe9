//! Serde for `f64` values that may be infinite or NaN (a candidate's loss is `+inf` when a batch
//! overflows). JSON has no such numbers and would write `null`, which then fails to read back; here
//! they are the strings `"inf"`, `"-inf"` and `"nan"`. A plain number or `null` (NaN) is read too,
//! so records written before are still read.
//!
//! Use `#[serde(with = "connito::serde_f64")]` on an `f64` and `#[serde(with =
//! "connito::serde_f64::vec")]` on a `Vec<f64>`.

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Wire {
    Num(f64),
    Text(String),
    Null(()),
}

fn to_wire(v: f64) -> Wire {
    if v.is_finite() {
        Wire::Num(v)
    } else if v.is_nan() {
        Wire::Text("nan".into())
    } else if v > 0.0 {
        Wire::Text("inf".into())
    } else {
        Wire::Text("-inf".into())
    }
}

fn from_wire<E: Error>(w: Wire) -> Result<f64, E> {
    match w {
        Wire::Num(v) => Ok(v),
        Wire::Null(()) => Ok(f64::NAN),
        Wire::Text(t) => match t.as_str() {
            "inf" => Ok(f64::INFINITY),
            "-inf" => Ok(f64::NEG_INFINITY),
            "nan" => Ok(f64::NAN),
            other => Err(E::custom(format!("not a number: {other:?}"))),
        },
    }
}

pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    to_wire(*v).serialize(s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    from_wire(Wire::deserialize(d)?)
}

/// The same for a `Vec<f64>`.
pub mod vec {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        v.iter()
            .map(|x| to_wire(*x))
            .collect::<Vec<_>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Vec::<Wire>::deserialize(d)?
            .into_iter()
            .map(from_wire)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct R {
        #[serde(with = "super")]
        x: f64,
        #[serde(with = "super::vec")]
        v: Vec<f64>,
    }

    #[test]
    fn non_finite_values_round_trip_through_json() {
        let r = R {
            x: f64::INFINITY,
            v: vec![1.5, f64::NEG_INFINITY, f64::NAN],
        };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"{"x":"inf","v":[1.5,"-inf","nan"]}"#);
        let back: R = serde_json::from_str(&json).unwrap();
        assert_eq!(back.x, f64::INFINITY);
        assert_eq!(back.v[..2], [1.5, f64::NEG_INFINITY]);
        assert!(back.v[2].is_nan());
        let old: R = serde_json::from_str(r#"{"x":null,"v":[2]}"#).unwrap();
        assert!(old.x.is_nan());
        assert_eq!(old.v, [2.0]);
        assert!(serde_json::from_str::<R>(r#"{"x":"big","v":[]}"#).is_err());
    }
}
