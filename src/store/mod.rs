//! Persistent state: sled trees with typed keys and versioned JSON values, and
//! content-addressed blob files for tensors.
//!
//! Every tree is a [`Table`] listed in [`tables`] (name, key type, value type, schema version);
//! the records they hold are in [`records`]. Values are stored as `{"v": version, "d": ...}`; a
//! value from a newer schema is a typed error, never a silent misread.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::tensors::{
    Hash32, StateDict, TensorError, blake2b_256, decode_canonical, encode_safetensors,
};

pub mod records;
pub mod tables;

pub use tables::{Fixed, Table, TableKey, TableValue};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database at {path}: {source}")]
    Open { path: PathBuf, source: sled::Error },
    #[error("database: {0}")]
    Db(#[from] sled::Error),
    #[error("value in tree {tree} is corrupt: {detail}")]
    Corrupt { tree: String, detail: String },
    #[error("value in tree {tree} has schema version {found}, this build reads up to {reads}")]
    NewerSchema {
        tree: String,
        found: u32,
        reads: u32,
    },
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

    fn encode<V: Serialize>(version: u32, value: &V) -> Vec<u8> {
        serde_json::to_vec(&Versioned {
            v: version,
            d: value,
        })
        .expect("plain data always serializes")
    }

    pub fn put<K: TableKey, V: TableValue>(
        &self,
        t: &Table<K, V>,
        k: &K,
        value: &V,
    ) -> Result<(), StoreError> {
        let bytes = Self::encode(t.version, value);
        self.db.open_tree(t.name)?.insert(k.to_bytes(), bytes)?;
        Ok(())
    }

    /// Writes and waits until the write is on disk (for write-ahead records).
    pub fn put_durable<K: TableKey, V: TableValue>(
        &self,
        t: &Table<K, V>,
        k: &K,
        value: &V,
    ) -> Result<(), StoreError> {
        self.put(t, k, value)?;
        self.db.flush()?;
        Ok(())
    }

    fn decode<K, V: TableValue>(t: &Table<K, V>, bytes: &[u8]) -> Result<V, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt {
            tree: t.name.into(),
            detail,
        };
        let raw: Versioned<serde_json::Value> =
            serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        if raw.v > t.version {
            return Err(StoreError::NewerSchema {
                tree: t.name.into(),
                found: raw.v,
                reads: t.version,
            });
        }
        serde_json::from_value(raw.d).map_err(|e| corrupt(e.to_string()))
    }

    fn decode_entry<K: TableKey, V: TableValue>(
        t: &Table<K, V>,
        k: &[u8],
        v: &[u8],
    ) -> Result<(K, V), StoreError> {
        let key = K::from_bytes(k).ok_or_else(|| StoreError::Corrupt {
            tree: t.name.into(),
            detail: format!("key {} is not of this tree's form", hex::encode(k)),
        })?;
        Ok((key, Self::decode(t, v)?))
    }

    /// Decodes the entries a sled iterator yields, in its order.
    fn entries<K: TableKey, V: TableValue>(
        t: &Table<K, V>,
        iter: sled::Iter,
    ) -> Result<Vec<(K, V)>, StoreError> {
        iter.map(|kv| {
            let (k, v) = kv?;
            Self::decode_entry(t, &k, &v)
        })
        .collect()
    }

    pub fn get<K: TableKey, V: TableValue>(
        &self,
        t: &Table<K, V>,
        k: &K,
    ) -> Result<Option<V>, StoreError> {
        match self.db.open_tree(t.name)?.get(k.to_bytes())? {
            Some(b) => Ok(Some(Self::decode(t, &b)?)),
            None => Ok(None),
        }
    }

    /// All entries whose key starts with the u64 parts `prefix` (a cycle), in key order.
    pub fn scan<K: TableKey, V: TableValue>(
        &self,
        t: &Table<K, V>,
        prefix: &[u64],
    ) -> Result<Vec<(K, V)>, StoreError> {
        Self::entries(t, self.db.open_tree(t.name)?.scan_prefix(key(prefix)))
    }

    /// Entries with `from <= key < to` (u64 parts, compared as a prefix), in key order; reads
    /// only that range.
    pub fn range<K: TableKey, V: TableValue>(
        &self,
        t: &Table<K, V>,
        from: &[u64],
        to: &[u64],
    ) -> Result<Vec<(K, V)>, StoreError> {
        Self::entries(t, self.db.open_tree(t.name)?.range(key(from)..key(to)))
    }

    /// The entry with the greatest key, if any (reads one entry).
    pub fn last<K: TableKey, V: TableValue>(
        &self,
        t: &Table<K, V>,
    ) -> Result<Option<(K, V)>, StoreError> {
        match self.db.open_tree(t.name)?.last()? {
            Some((k, v)) => Ok(Some(Self::decode_entry(t, &k, &v)?)),
            None => Ok(None),
        }
    }

    /// Removes `k` (absent is fine).
    pub fn remove<K: TableKey, V>(&self, t: &Table<K, V>, k: &K) -> Result<(), StoreError> {
        self.db.open_tree(t.name)?.remove(k.to_bytes())?;
        Ok(())
    }

    /// Inserts only if absent; returns false when a value was already there (check-and-record in
    /// one atomic step, so two writers can never both win).
    pub fn insert_new<K: TableKey, V: TableValue>(
        &self,
        t: &Table<K, V>,
        k: &K,
        value: &V,
    ) -> Result<bool, StoreError> {
        let bytes = Self::encode(t.version, value);
        let won = self
            .db
            .open_tree(t.name)?
            .compare_and_swap(k.to_bytes(), None as Option<&[u8]>, Some(bytes))?
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

    const BY_CYCLE: Table<u64, Rec> = Table::new("test_by_cycle", 1);
    const BY_UID: Table<(u64, u16), Rec> = Table::new("test_by_uid", 1);
    const SLOT: Table<Fixed, Rec> = Table::new("test_slot", 1);

    #[test]
    fn values_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            s.put_durable(&BY_CYCLE, &3, &Rec { a: 7 }).unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.get(&BY_CYCLE, &3).unwrap(), Some(Rec { a: 7 }));
    }

    #[test]
    fn scan_is_in_numeric_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        for c in [300u64, 2, 17] {
            s.put(&BY_UID, &(c, 1), &Rec { a: c as u32 }).unwrap();
        }
        let got: Vec<u32> = s
            .scan(&BY_UID, &[])
            .unwrap()
            .into_iter()
            .map(|(_, r)| r.a)
            .collect();
        assert_eq!(got, vec![2, 17, 300]);
        assert_eq!(key_parts(&key(&[5, 9])), vec![5, 9]);
        let mid: Vec<u32> = s
            .range(&BY_UID, &[3], &[300])
            .unwrap()
            .into_iter()
            .map(|(_, r)| r.a)
            .collect();
        assert_eq!(mid, vec![17], "range is [from, to)");
        assert_eq!(
            s.last(&BY_UID).unwrap().unwrap(),
            ((300, 1), Rec { a: 300 })
        );
        assert!(s.last(&BY_CYCLE).unwrap().is_none());
    }

    #[test]
    fn newer_schema_and_garbage_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let raw = |k: &[u8], v: &[u8]| {
            s.db.open_tree(SLOT.name)
                .unwrap()
                .insert(k, v.to_vec())
                .unwrap()
        };
        raw(b"x", br#"{"v":99,"d":{"a":1}}"#);
        assert!(matches!(
            s.get(&SLOT, &Fixed(b"x")),
            Err(StoreError::NewerSchema {
                found: 99,
                reads: 1,
                ..
            })
        ));
        raw(b"y", b"garbage");
        assert!(matches!(
            s.get(&SLOT, &Fixed(b"y")),
            Err(StoreError::Corrupt { .. })
        ));
        raw(b"z", br#"{"v":1,"d":{"a":"not a number"}}"#);
        assert!(matches!(
            s.get(&SLOT, &Fixed(b"z")),
            Err(StoreError::Corrupt { .. })
        ));
        // A key that is not of the tree's form is a typed error too, not a panic.
        s.db.open_tree(BY_UID.name)
            .unwrap()
            .insert(b"short", br#"{"v":1,"d":{"a":1}}"#.to_vec())
            .unwrap();
        assert!(matches!(
            s.scan(&BY_UID, &[]),
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
                    sc.spawn(move || s.insert_new(&BY_CYCLE, &1, &Rec { a: i }).unwrap() as usize)
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
