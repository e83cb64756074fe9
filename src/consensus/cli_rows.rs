//! The two forms `weights` and `bonds` take in `connito consensus yuma`.
//!
//! - **Matrix**: `n` rows of `n` numbers; entry `[i][j]` is row `i`'s value for uid `j` and a 0
//!   is *no entry*.
//! - **Sparse**: `n` rows, each a list of `[uid, value]` pairs, as Subtensor stores `Weights` and
//!   `Bonds`: a listed pair is an entry even when its value is 0, an unlisted uid is none. Under
//!   Yuma3 with liquid alpha the difference matters (a bond is kept and decayed where an entry
//!   exists).
//!
//! The form is read from the rows themselves: rows of numbers are a matrix, rows of pairs are
//! sparse, and rows that are all empty are sparse rows without entries. Mixing the two is an
//! error.

use serde_json::Value;

use super::cli::CliError;

/// How a field was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Matrix,
    Sparse,
}

/// A field's rows as `(uid, value)` entries in uid order. A matrix keeps every column here
/// (zeros too); [`Rows::entries`] drops a matrix's zeros, which are no entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    pub form: Form,
    pub rows: Vec<Vec<(u16, f64)>>,
}

impl Rows {
    /// Whether a value of 0 at this place is an entry (sparse) or no entry (matrix).
    pub fn keeps_zeros(&self) -> bool {
        self.form == Form::Sparse
    }

    /// Every value with its `(row, uid)`, for checks that name the offending place.
    pub fn values(&self) -> impl Iterator<Item = (usize, u16, f64)> + '_ {
        self.rows
            .iter()
            .enumerate()
            .flat_map(|(i, row)| row.iter().map(move |&(j, v)| (i, j, v)))
    }
}

/// Parses `field` (`weights` or `bonds`) for `n` uids in either form.
pub fn parse_rows(field: &'static str, v: &Value, n: usize) -> Result<Rows, CliError> {
    let rows = v.as_array().ok_or(CliError::NotRows { field })?;
    if rows.len() != n {
        return Err(CliError::WrongLength {
            field,
            expected: n,
            actual: rows.len(),
        });
    }
    let mut form = None;
    for (i, row) in rows.iter().enumerate() {
        let row = row.as_array().ok_or(CliError::NotRows { field })?;
        let Some(first) = row.first() else { continue };
        let this = if first.is_array() {
            Form::Sparse
        } else {
            Form::Matrix
        };
        match form {
            None => form = Some(this),
            Some(f) if f != this => return Err(CliError::MixedForms { field, row: i }),
            Some(_) => {}
        }
    }
    let form = form.unwrap_or(Form::Sparse);
    let rows = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let row = row.as_array().expect("checked above");
            match form {
                Form::Matrix => matrix_row(field, i, row, n),
                Form::Sparse => sparse_row(field, i, row, n),
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(Rows { form, rows })
}

fn number(field: &'static str, row: usize, col: usize, v: &Value) -> Result<f64, CliError> {
    v.as_f64().ok_or(CliError::NotANumber { field, row, col })
}

fn matrix_row(
    field: &'static str,
    i: usize,
    row: &[Value],
    n: usize,
) -> Result<Vec<(u16, f64)>, CliError> {
    if row.len() != n {
        return Err(CliError::NotSquare {
            field,
            row: i,
            expected: n,
            actual: row.len(),
        });
    }
    row.iter()
        .enumerate()
        .map(|(j, v)| Ok((j as u16, number(field, i, j, v)?)))
        .collect()
}

fn sparse_row(
    field: &'static str,
    i: usize,
    row: &[Value],
    n: usize,
) -> Result<Vec<(u16, f64)>, CliError> {
    let mut entries = Vec::with_capacity(row.len());
    for (index, pair) in row.iter().enumerate() {
        let bad_pair = CliError::NotAPair {
            field,
            row: i,
            index,
        };
        let [uid, value] = pair.as_array().map(Vec::as_slice).unwrap_or_default() else {
            return Err(bad_pair);
        };
        let (Some(uid), Some(value)) = (uid.as_f64(), value.as_f64()) else {
            return Err(bad_pair);
        };
        if uid.fract() != 0.0 || uid < 0.0 || uid >= n as f64 {
            return Err(CliError::UidOutOfRange {
                field,
                row: i,
                uid,
                n,
            });
        }
        entries.push((uid as u16, value));
    }
    entries.sort_by_key(|e| e.0);
    if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(CliError::DuplicateUid {
            field,
            row: i,
            uid: w[0].0,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value, n: usize) -> Result<Rows, CliError> {
        parse_rows("weights", &v, n)
    }

    #[test]
    fn matrix_rows_keep_every_column_and_drop_zeros_as_entries() {
        let r = parse(json!([[0, 0.5], [1, 0]]), 2).unwrap();
        assert_eq!(r.form, Form::Matrix);
        assert!(!r.keeps_zeros());
        assert_eq!(
            r.rows,
            vec![vec![(0, 0.0), (1, 0.5)], vec![(0, 1.0), (1, 0.0)]]
        );
    }

    #[test]
    fn sparse_rows_keep_listed_zeros_and_come_out_in_uid_order() {
        let r = parse(json!([[[2, 0], [1, 7]], [], [[0, 0.25]]]), 3).unwrap();
        assert_eq!(r.form, Form::Sparse);
        assert!(r.keeps_zeros());
        assert_eq!(
            r.rows,
            vec![vec![(1, 7.0), (2, 0.0)], vec![], vec![(0, 0.25)]]
        );
    }

    #[test]
    fn all_empty_rows_are_sparse_rows_without_entries() {
        let r = parse(json!([[], [], []]), 3).unwrap();
        assert_eq!(r.form, Form::Sparse);
        assert!(r.rows.iter().all(Vec::is_empty));
    }

    #[test]
    fn bad_rows_get_typed_errors() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({"a": 1}), "NotRows"),
            (json!([[0, 1], 5]), "NotRows"),
            (json!([[0, 1], [[1, 1]]]), "MixedForms"),
            (json!([[[0, 1]], [0, 1]]), "MixedForms"),
            (json!([[[0, 1, 2]], []]), "NotAPair"),
            (json!([[[0]], []]), "NotAPair"),
            (json!([[["a", 1]], []]), "NotAPair"),
            (json!([[[0, null]], []]), "NotAPair"),
            (json!([[[2, 1]], []]), "UidOutOfRange"),
            (json!([[[-1, 1]], []]), "UidOutOfRange"),
            (json!([[[0.5, 1]], []]), "UidOutOfRange"),
            (json!([[[1, 1], [1, 2]], []]), "DuplicateUid"),
            (json!([[0, "x"], [0, 0]]), "NotANumber"),
            (json!([[0, 1, 2], [0, 0]]), "NotSquare"),
            (json!([[]]), "WrongLength"),
        ];
        for (v, want) in cases {
            let err = parse(v.clone(), 2).unwrap_err();
            let got = format!("{err:?}");
            assert!(got.starts_with(want), "{v}: {got}");
        }
    }
}
