//! The text column of a Parquet file (C4 as Hugging Face serves it), read row by row with only
//! that column projected.

use std::path::Path;
use std::sync::Arc;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::RowAccessor;
use parquet::schema::types::Type;

use super::docs::DocsError;

/// Calls `sink` with the text of each row's `column` (null rows are skipped).
pub fn read(
    path: &Path,
    column: &str,
    sink: &mut dyn FnMut(String) -> Result<(), DocsError>,
) -> Result<(), DocsError> {
    let bad = |why: String| DocsError::Parquet {
        path: path.to_path_buf(),
        why,
    };
    let file = std::fs::File::open(path).map_err(|source| DocsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = SerializedFileReader::new(file).map_err(|e| bad(e.to_string()))?;
    let schema = reader.metadata().file_metadata().schema();
    let fields = schema.get_fields();
    let Some(field) = fields.iter().find(|f| f.name() == column) else {
        return Err(DocsError::NoColumn {
            path: path.to_path_buf(),
            column: column.into(),
            have: fields
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let projection = Type::group_type_builder(schema.name())
        .with_fields(vec![Arc::clone(field)])
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let rows = reader
        .get_row_iter(Some(projection))
        .map_err(|e| bad(e.to_string()))?;
    for row in rows {
        let row = row.map_err(|e| bad(e.to_string()))?;
        if row.len() == 0 {
            continue;
        }
        match row.get_string(0) {
            Ok(s) => sink(s.clone())?,
            Err(_)
                if matches!(
                    row.get_column_iter().next(),
                    Some((_, parquet::record::Field::Null))
                ) => {}
            Err(e) => return Err(bad(format!("column {column:?}: {e}"))),
        }
    }
    Ok(())
}
