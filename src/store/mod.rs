//! Persistent state: sled trees with typed keys and versioned JSON values, and
//! content-addressed blob files for tensors.
//!
//! Trees: `chain`, `commitments`, `rounds`, `submissions`, `scores`, `weights`, `models`,
//! `trainer`, `meta`. Values are stored as `{"v": SCHEMA_VERSION, "d": ...}`; a value from a
//! newer schema is a typed error, never a silent misread.

use std::path::{Path, PathBuf};

use serde::{Serialize, de::DeserializeOwned};

use crate::tensors::{
    Hash32, StateDict, TensorError, blake2b_256, decode_canonical, encode_safetensors,
};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database at {path}: {source}")]
    Open { path: PathBuf, source: sled::Error },
    #[error("database: {0}")]
    Db(#[from] sled::Error),
    #[error("value in tree {tree} is corrupt: {detail}")]
    Corrupt { tree: String, detail: String },
    #[error("value in tree {tree} has schema version {found}, this build reads {SCHEMA_VERSION}")]
    NewerSchema { tree: String, found: u32 },
    #[error("blob {0}: {1}")]
    BlobIo(String, std::io::Error),
    #[error("blob {hash} does not match its content")]
    BlobCorrupt { hash: String },
    #[error("blob {hash}: {source}")]
    BlobFormat { hash: String, source: TensorError },
}

#[derive(Serialize, serde::Deserialize)]
struct Versioned<T> {
    v: u32,
    d: T,
}

/// One daemon's database and blob directory.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    blobs: PathBuf,
}

/// A key of big-endian u64 parts, so numeric order is byte order.
pub fn key(parts: &[u64]) -> Vec<u8> {
    parts.iter().flat_map(|p| p.to_be_bytes()).collect()
}

/// Reads back the u64 parts of a key made by [`key`].
pub fn key_parts(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

impl Store {
    /// Opens (creating) the database under `dir/db` and blobs under `dir/blobs`. sled holds an
    /// exclusive lock: a second process on the same directory fails here.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join("db");
        let db = sled::Config::new()
            .path(&path)
            .flush_every_ms(Some(200))
            .open()
            .map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        let blobs = dir.join("blobs");
        std::fs::create_dir_all(&blobs)
            .map_err(|e| StoreError::BlobIo(blobs.display().to_string(), e))?;
        Ok(Self { db, blobs })
    }

    pub fn put<T: Serialize>(&self, tree: &str, k: &[u8], value: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(&Versioned {
            v: SCHEMA_VERSION,
            d: value,
        })
        .expect("plain data always serializes");
        self.db.open_tree(tree)?.insert(k, bytes)?;
        Ok(())
    }

    /// Writes and waits until the write is on disk (for write-ahead records).
    pub fn put_durable<T: Serialize>(
        &self,
        tree: &str,
        k: &[u8],
        value: &T,
    ) -> Result<(), StoreError> {
        self.put(tree, k, value)?;
        self.db.flush()?;
        Ok(())
    }

    fn decode<T: DeserializeOwned>(tree: &str, bytes: &[u8]) -> Result<T, StoreError> {
        let raw: Versioned<serde_json::Value> =
            serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
                tree: tree.into(),
                detail: e.to_string(),
            })?;
        if raw.v > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                tree: tree.into(),
                found: raw.v,
            });
        }
        serde_json::from_value(raw.d).map_err(|e| StoreError::Corrupt {
            tree: tree.into(),
            detail: e.to_string(),
        })
    }

    pub fn get<T: DeserializeOwned>(&self, tree: &str, k: &[u8]) -> Result<Option<T>, StoreError> {
        match self.db.open_tree(tree)?.get(k)? {
            Some(b) => Ok(Some(Self::decode(tree, &b)?)),
            None => Ok(None),
        }
    }

    /// All values whose key starts with `prefix`, in key order.
    pub fn scan<T: DeserializeOwned>(
        &self,
        tree: &str,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        let t = self.db.open_tree(tree)?;
        let mut out = vec![];
        for kv in t.scan_prefix(prefix) {
            let (k, v) = kv?;
            out.push((k.to_vec(), Self::decode(tree, &v)?));
        }
        Ok(out)
    }

    /// Values with `from <= key < to`, in key order (reads only that range).
    pub fn range<T: DeserializeOwned>(
        &self,
        tree: &str,
        from: &[u8],
        to: &[u8],
    ) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        let t = self.db.open_tree(tree)?;
        let mut out = vec![];
        for kv in t.range(from..to) {
            let (k, v) = kv?;
            out.push((k.to_vec(), Self::decode(tree, &v)?));
        }
        Ok(out)
    }

    /// The value with the greatest key, if any (reads one entry).
    pub fn last<T: DeserializeOwned>(
        &self,
        tree: &str,
    ) -> Result<Option<(Vec<u8>, T)>, StoreError> {
        match self.db.open_tree(tree)?.last()? {
            Some((k, v)) => Ok(Some((k.to_vec(), Self::decode(tree, &v)?))),
            None => Ok(None),
        }
    }

    /// Removes `k` from `tree` (absent is fine).
    pub fn remove(&self, tree: &str, k: &[u8]) -> Result<(), StoreError> {
        self.db.open_tree(tree)?.remove(k)?;
        Ok(())
    }

    /// Inserts only if absent; returns false when a value was already there (check-and-record in
    /// one atomic step, so two writers can never both win).
    pub fn insert_new<T: Serialize>(
        &self,
        tree: &str,
        k: &[u8],
        value: &T,
    ) -> Result<bool, StoreError> {
        let bytes = serde_json::to_vec(&Versioned {
            v: SCHEMA_VERSION,
            d: value,
        })
        .expect("plain data always serializes");
        let won = self
            .db
            .open_tree(tree)?
            .compare_and_swap(k, None as Option<&[u8]>, Some(bytes))?
            .is_ok();
        if won {
            self.db.flush()?;
        }
        Ok(won)
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn blob_path(&self, hash: &Hash32) -> PathBuf {
        self.blobs
            .join(format!("{}.safetensors", hex::encode(hash)))
    }

    /// Stores raw safetensors bytes under their BLAKE2b-256 hash (written to a temporary name,
    /// synced, then renamed, so a crash never leaves a half blob under a real name).
    pub fn put_blob_bytes(&self, bytes: &[u8]) -> Result<Hash32, StoreError> {
        let hash = blake2b_256(bytes);
        let path = self.blob_path(&hash);
        if path.exists() {
            return Ok(hash);
        }
        // A temporary name of this writer's own: concurrent writers of the same content (two
        // submissions of one shard) must not rename each other's file away.
        static WRITER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp.{}.{n}", std::process::id()));
        let io = |e| StoreError::BlobIo(path.display().to_string(), e);
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })?;
        Ok(hash)
    }

    pub fn put_state_dict(&self, sd: &StateDict) -> Result<Hash32, StoreError> {
        self.put_blob_bytes(&encode_safetensors(sd))
    }

    pub fn blob_bytes(&self, hash: &Hash32) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(hash);
        let bytes =
            std::fs::read(&path).map_err(|e| StoreError::BlobIo(path.display().to_string(), e))?;
        if blake2b_256(&bytes) != *hash {
            return Err(StoreError::BlobCorrupt {
                hash: hex::encode(hash),
            });
        }
        Ok(bytes)
    }

    /// Deletes a blob (absent is fine).
    pub fn remove_blob(&self, hash: &Hash32) -> Result<(), StoreError> {
        let path = self.blob_path(hash);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::BlobIo(path.display().to_string(), e)),
        }
    }

    pub fn get_state_dict(&self, hash: &Hash32) -> Result<StateDict, StoreError> {
        let bytes = self.blob_bytes(hash)?;
        decode_canonical(&bytes).map_err(|source| StoreError::BlobFormat {
            hash: hex::encode(hash),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensors::TensorBlob;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Rec {
        a: u32,
    }

    #[test]
    fn values_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            s.put_durable("rounds", &key(&[3]), &Rec { a: 7 }).unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(
            s.get::<Rec>("rounds", &key(&[3])).unwrap(),
            Some(Rec { a: 7 })
        );
    }

    #[test]
    fn scan_is_in_numeric_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        for c in [300u64, 2, 17] {
            s.put("scores", &key(&[c, 1]), &Rec { a: c as u32 })
                .unwrap();
        }
        let got: Vec<u32> = s
            .scan::<Rec>("scores", &[])
            .unwrap()
            .into_iter()
            .map(|(_, r)| r.a)
            .collect();
        assert_eq!(got, vec![2, 17, 300]);
        assert_eq!(key_parts(&key(&[5, 9])), vec![5, 9]);
        let mid: Vec<u32> = s
            .range::<Rec>("scores", &key(&[3]), &key(&[300]))
            .unwrap()
            .into_iter()
            .map(|(_, r)| r.a)
            .collect();
        assert_eq!(mid, vec![17], "range is [from, to)");
        assert_eq!(s.last::<Rec>("scores").unwrap().unwrap().1, Rec { a: 300 });
        assert!(s.last::<Rec>("empty").unwrap().is_none());
    }

    #[test]
    fn newer_schema_and_garbage_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.db.open_tree("meta")
            .unwrap()
            .insert(b"x", br#"{"v":99,"d":{"a":1}}"#.to_vec())
            .unwrap();
        assert!(matches!(
            s.get::<Rec>("meta", b"x"),
            Err(StoreError::NewerSchema { found: 99, .. })
        ));
        s.db.open_tree("meta")
            .unwrap()
            .insert(b"y", b"garbage".to_vec())
            .unwrap();
        assert!(matches!(
            s.get::<Rec>("meta", b"y"),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn insert_new_has_exactly_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let wins: usize = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let s = s.clone();
                    sc.spawn(move || {
                        s.insert_new("weights", &key(&[1]), &Rec { a: i }).unwrap() as usize
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, 1);
    }

    #[test]
    fn blobs_are_content_addressed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let mut sd = StateDict::new();
        sd.insert(
            "w".into(),
            TensorBlob::new(vec![2], vec![1.0, 2.0]).unwrap(),
        );
        let h = s.put_state_dict(&sd).unwrap();
        assert_eq!(s.get_state_dict(&h).unwrap(), sd);
        std::fs::write(s.blob_path(&h), b"tampered").unwrap();
        assert!(matches!(
            s.get_state_dict(&h),
            Err(StoreError::BlobCorrupt { .. })
        ));
        s.remove_blob(&h).unwrap();
        s.remove_blob(&h).unwrap();
        assert!(matches!(s.get_state_dict(&h), Err(StoreError::BlobIo(..))));
        let h = s.put_state_dict(&sd).unwrap();
        std::fs::write(s.blob_path(&h), b"tampered").unwrap();
        assert!(matches!(
            s.get_state_dict(&h),
            Err(StoreError::BlobCorrupt { .. })
        ));
    }

    #[test]
    fn concurrent_writers_of_one_blob_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let bytes = vec![7u8; 1 << 20];
        let hashes: Vec<Hash32> = std::thread::scope(|scope| {
            let hs: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| s.put_blob_bytes(&bytes).unwrap()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(hashes.iter().all(|h| *h == blake2b_256(&bytes)));
        assert_eq!(s.blob_bytes(&hashes[0]).unwrap(), bytes);
        let left: Vec<_> = std::fs::read_dir(s.blob_path(&hashes[0]).parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "no temporary file is left: {left:?}");
    }

    #[test]
    fn second_open_of_same_dir_fails() {
        let dir = tempfile::tempdir().unwrap();
        let _a = Store::open(dir.path()).unwrap();
        // sled's lock is per process and file; a second open in this process is refused too.
        assert!(Store::open(dir.path()).is_err());
    }
}
