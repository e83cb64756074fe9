//! Text corpora read from a file or a directory: the domain of an expert group can be real text
//! (documentation, source code, prose) instead of a generated task.
//!
//! A corpus is the bytes of its files, in sorted path order, cut into chunks of [`CHUNK_BYTES`]
//! (a file's last chunk may be shorter; chunks never span files). Sample `i` of seed `s` is the
//! chunk at `mix(s, tag, i) mod chunks`, where the tag is derived from the corpus content, so the
//! same files give the same samples on every machine. Held-out chunks are chosen by content
//! hash, like every other sample; a held-out sample starts at an offset inside its chunk (see
//! `Sampler`), so evaluation rows begin anywhere in the held-out text. The held-out text is as
//! public as the rest of the corpus: evaluation on a corpus measures the model on text a miner
//! could have trained on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::is_heldout;
use crate::tensors::blake2b_256;

/// Bytes per corpus sample.
pub const CHUNK_BYTES: usize = 256;

/// Files larger than this are refused (read the corpus in parts instead).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("text corpus {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("text corpus {0} holds no non-empty files")]
    Empty(PathBuf),
    #[error("text corpus file {path} is {bytes} bytes (the limit is {MAX_FILE_BYTES})")]
    FileTooLarge { path: PathBuf, bytes: u64 },
    #[error(
        "text corpus {path} has {chunks} chunks of {CHUNK_BYTES} bytes: too few to hold both a \
         training and a held-out split (1 in {heldout_every} is held out); add text"
    )]
    TooSmall {
        path: PathBuf,
        chunks: usize,
        heldout_every: u64,
    },
    #[error("text corpus {0} was named in the config but not loaded")]
    NotLoaded(PathBuf),
    #[error(transparent)]
    Docs(#[from] super::DocsError),
}

/// A text corpus: where it comes from and, once loaded, its chunks.
#[derive(Clone)]
pub struct TextCorpus {
    path: PathBuf,
    loaded: Option<Arc<Loaded>>,
}

struct Loaded {
    chunks: Vec<Box<[u8]>>,
    files: usize,
    bytes: usize,
    tag: u64,
}

impl std::fmt::Debug for TextCorpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("TextCorpus");
        d.field("path", &self.path);
        if let Some(l) = &self.loaded {
            d.field("files", &l.files)
                .field("bytes", &l.bytes)
                .field("chunks", &l.chunks.len());
        }
        d.finish()
    }
}

/// Two corpora are the same domain when they name the same path (and, loaded, hold the same text).
impl PartialEq for TextCorpus {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
            && self.loaded.as_ref().map(|l| l.tag) == other.loaded.as_ref().map(|l| l.tag)
    }
}
impl Eq for TextCorpus {}

impl std::hash::Hash for TextCorpus {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.path.hash(state);
    }
}

impl Serialize for TextCorpus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.path.serialize(s)
    }
}

impl<'de> Deserialize<'de> for TextCorpus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::unloaded(PathBuf::deserialize(d)?))
    }
}

impl TextCorpus {
    /// A corpus named by `path`, not read yet.
    pub fn unloaded(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            loaded: None,
        }
    }

    /// Builds a corpus from in-memory files `(name, bytes)`, in the order given.
    pub fn from_files(
        path: impl Into<PathBuf>,
        files: &[(String, Vec<u8>)],
        heldout_every: u64,
    ) -> Result<Self, CorpusError> {
        let path = path.into();
        let mut chunks = Vec::new();
        let mut hasher_input = Vec::new();
        let mut count = 0;
        let mut bytes = 0;
        for (name, data) in files {
            if data.is_empty() {
                continue;
            }
            count += 1;
            bytes += data.len();
            hasher_input.extend_from_slice(&blake2b_256(name.as_bytes()));
            hasher_input.extend_from_slice(&blake2b_256(data));
            chunks.extend(data.chunks(CHUNK_BYTES).map(Box::<[u8]>::from));
        }
        if chunks.is_empty() {
            return Err(CorpusError::Empty(path));
        }
        let held = chunks
            .iter()
            .filter(|c| is_heldout(c, heldout_every))
            .count();
        if held == 0 || held == chunks.len() {
            return Err(CorpusError::TooSmall {
                path,
                chunks: chunks.len(),
                heldout_every,
            });
        }
        let tag = crate::tensors::hash_u64(&blake2b_256(&hasher_input));
        Ok(Self {
            path,
            loaded: Some(Arc::new(Loaded {
                chunks,
                files: count,
                bytes,
                tag,
            })),
        })
    }

    /// Reads the file, or every non-hidden file under the directory (recursively, in sorted
    /// path order), resolving a relative path against `base`.
    pub fn load(&self, base: &Path, heldout_every: u64) -> Result<Self, CorpusError> {
        let full = if self.path.is_absolute() {
            self.path.clone()
        } else {
            base.join(&self.path)
        };
        let mut paths = Vec::new();
        collect_files(&full, &mut paths)?;
        paths.sort();
        let mut files = Vec::with_capacity(paths.len());
        for p in paths {
            let io = |source| CorpusError::Io {
                path: p.clone(),
                source,
            };
            let len = std::fs::metadata(&p).map_err(io)?.len();
            if len > MAX_FILE_BYTES {
                return Err(CorpusError::FileTooLarge {
                    path: p.clone(),
                    bytes: len,
                });
            }
            let data = std::fs::read(&p).map_err(io)?;
            let name = p
                .strip_prefix(&full)
                .unwrap_or(&p)
                .to_string_lossy()
                .into_owned();
            files.push((name, data));
        }
        Self::from_files(self.path.clone(), &files, heldout_every).map_err(|e| match e {
            CorpusError::Empty(_) => CorpusError::Empty(full.clone()),
            other => other,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.is_some()
    }

    fn loaded(&self) -> &Loaded {
        self.loaded.as_deref().unwrap_or_else(|| {
            panic!(
                "text corpus {} used before it was loaded (configs load their corpora)",
                self.path.display()
            )
        })
    }

    /// (files, bytes, chunks) of a loaded corpus.
    pub fn size(&self) -> Option<(usize, usize, usize)> {
        self.loaded
            .as_ref()
            .map(|l| (l.files, l.bytes, l.chunks.len()))
    }

    /// Content-derived tag that separates this corpus's sample streams from every other domain.
    pub fn tag(&self) -> u64 {
        self.loaded().tag
    }

    /// The chunk picked by `key` (a mixed seed and index).
    pub fn chunk(&self, key: u64) -> &[u8] {
        let l = self.loaded();
        &l.chunks[(key % l.chunks.len() as u64) as usize]
    }
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), CorpusError> {
    let io = |source| CorpusError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(path).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let p = entry.path();
        if p.is_dir() {
            collect_files(&p, out)?;
        } else if p.is_file() {
            out.push(p);
        }
    }
    Ok(())
}
