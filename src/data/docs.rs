//! Document corpora tokenized with a Hugging Face tokenizer: the domain of an expert group as
//! SN102 trains it (C4-style documents, DeepSeek's tokenizer).
//!
//! Documents are the text column of JSON-lines files (`.jsonl`), gzipped JSON lines
//! (`.jsonl.gz`, `.json.gz`, as C4 ships) and Parquet files (`.parquet`; snappy, gzip or
//! uncompressed pages), read from one file or every such file under a directory, in sorted path
//! order. Sample `i` of seed `s` is the document at `mix(s, tag, i) mod documents` (the tag is
//! derived from the content, so the same files give the same samples everywhere), tokenized
//! with `tokenizer.json`'s special tokens (DeepSeek's adds BOS). Held-out documents are chosen
//! by content hash like every other sample; rows are packed from whole documents.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::is_heldout;
use crate::tensors::blake2b_256;

/// Uncompressed bytes of documents a corpus may hold in memory.
pub const MAX_DOC_BYTES: u64 = 2 << 30;

#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    #[error("document corpus {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {why}")]
    BadLine {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("{path}: not a readable Parquet file: {why}")]
    Parquet { path: PathBuf, why: String },
    #[error("{path} has no text column {column:?} (columns: {have})")]
    NoColumn {
        path: PathBuf,
        column: String,
        have: String,
    },
    #[error("document corpus {0} holds no .jsonl, .jsonl.gz or .parquet file with a document")]
    Empty(PathBuf),
    #[error("document corpus {path} is over {MAX_DOC_BYTES} bytes of text; name a part of it")]
    TooLarge { path: PathBuf },
    #[error(
        "document corpus {path} has {docs} documents: too few to hold both a training and a \
         held-out split (1 in {heldout_every} is held out)"
    )]
    TooSmall {
        path: PathBuf,
        docs: usize,
        heldout_every: u64,
    },
    #[error("tokenizer {path}: {why}")]
    Tokenizer { path: PathBuf, why: String },
}

/// Where a document corpus comes from (its TOML form).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocsSpec {
    /// A file or a directory of `.jsonl`, `.jsonl.gz` and `.parquet` files.
    pub path: PathBuf,
    /// A Hugging Face `tokenizer.json`.
    pub tokenizer: PathBuf,
    /// The column (JSON key or Parquet column) holding each document's text.
    #[serde(default = "default_column")]
    pub text_column: String,
}

fn default_column() -> String {
    "text".into()
}

/// A document corpus: its spec and, once loaded, its documents and tokenizer.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "DocsSpec", into = "DocsSpec")]
pub struct DocCorpus {
    spec: DocsSpec,
    loaded: Option<Arc<Loaded>>,
}

struct Loaded {
    docs: Vec<Box<str>>,
    tokenizer: tokenizers::Tokenizer,
    vocab: usize,
    files: usize,
    bytes: usize,
    tag: u64,
}

impl From<DocsSpec> for DocCorpus {
    fn from(spec: DocsSpec) -> Self {
        Self { spec, loaded: None }
    }
}

impl From<DocCorpus> for DocsSpec {
    fn from(c: DocCorpus) -> Self {
        c.spec
    }
}

impl std::fmt::Debug for DocCorpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("DocCorpus");
        d.field("spec", &self.spec);
        if let Some(l) = &self.loaded {
            d.field("files", &l.files)
                .field("documents", &l.docs.len())
                .field("bytes", &l.bytes)
                .field("vocab", &l.vocab);
        }
        d.finish()
    }
}

/// The same domain: the same spec (and, loaded, the same documents).
impl PartialEq for DocCorpus {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec
            && self.loaded.as_ref().map(|l| l.tag) == other.loaded.as_ref().map(|l| l.tag)
    }
}
impl Eq for DocCorpus {}

impl std::hash::Hash for DocCorpus {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.spec.hash(state);
    }
}

impl DocCorpus {
    pub fn spec(&self) -> &DocsSpec {
        &self.spec
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.is_some()
    }

    /// Reads the documents and the tokenizer; relative paths resolve against `base`.
    pub fn load(&self, base: &Path, heldout_every: u64) -> Result<Self, DocsError> {
        let path = base.join(&self.spec.path);
        let tok_path = base.join(&self.spec.tokenizer);
        let tokenizer =
            tokenizers::Tokenizer::from_file(&tok_path).map_err(|e| DocsError::Tokenizer {
                path: tok_path.clone(),
                why: e.to_string(),
            })?;
        let files = doc_files(&path)?;
        let mut docs = vec![];
        let mut bytes = 0u64;
        for f in &files {
            read_docs(f, &self.spec.text_column, &mut |d| {
                bytes += d.len() as u64;
                if bytes > MAX_DOC_BYTES {
                    return Err(DocsError::TooLarge { path: path.clone() });
                }
                if !d.is_empty() {
                    docs.push(d.into_boxed_str());
                }
                Ok(())
            })?;
        }
        if docs.is_empty() {
            return Err(DocsError::Empty(path));
        }
        let held = docs
            .iter()
            .filter(|d| is_heldout(d.as_bytes(), heldout_every))
            .count();
        if held == 0 || held == docs.len() {
            return Err(DocsError::TooSmall {
                path,
                docs: docs.len(),
                heldout_every,
            });
        }
        let mut all = Vec::with_capacity(docs.len() * 32);
        for d in &docs {
            all.extend_from_slice(&blake2b_256(d.as_bytes()));
        }
        let tag = crate::tensors::hash_u64(&blake2b_256(&all));
        Ok(Self {
            spec: self.spec.clone(),
            loaded: Some(Arc::new(Loaded {
                vocab: tokenizer.get_vocab_size(true),
                tokenizer,
                files: files.len(),
                bytes: bytes as usize,
                docs,
                tag,
            })),
        })
    }

    fn loaded(&self) -> &Loaded {
        self.loaded
            .as_deref()
            .expect("document corpora are loaded with the config, before sampling")
    }

    /// The content tag (mixed into sample keys).
    pub fn tag(&self) -> u64 {
        self.loaded().tag
    }

    /// The document key `key` picks.
    pub fn doc(&self, key: u64) -> &str {
        let docs = &self.loaded().docs;
        &docs[(key % docs.len() as u64) as usize]
    }

    /// Token ids of `text`, with the tokenizer's special tokens (its BOS, where it adds one).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match self.loaded().tokenizer.encode(text, true) {
            Ok(e) => e.get_ids().to_vec(),
            // The tokenizer loaded and every document is valid UTF-8; an encoding failure
            // would be the tokenizer's own bug: the document contributes nothing.
            Err(_) => vec![],
        }
    }

    /// Tokens the tokenizer can produce (its vocabulary with added tokens); `None` unloaded.
    pub fn vocab(&self) -> Option<usize> {
        self.loaded.as_ref().map(|l| l.vocab)
    }

    /// `(files, documents, bytes)` once loaded.
    pub fn size(&self) -> Option<(usize, usize, usize)> {
        self.loaded
            .as_ref()
            .map(|l| (l.files, l.docs.len(), l.bytes))
    }
}

fn is_doc_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    [".jsonl", ".jsonl.gz", ".json.gz", ".parquet"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// The document files at `path`: itself, or every document file under it, sorted.
fn doc_files(path: &Path) -> Result<Vec<PathBuf>, DocsError> {
    let io = |source| DocsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = vec![];
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).map_err(io)? {
            let p = e.map_err(io)?.path();
            if p.is_dir() {
                stack.push(p);
            } else if is_doc_file(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

type Sink<'a> = dyn FnMut(String) -> Result<(), DocsError> + 'a;

/// Calls `sink` with each document's text in file `path`.
fn read_docs(path: &Path, column: &str, sink: &mut Sink<'_>) -> Result<(), DocsError> {
    let name = path.to_string_lossy();
    if name.ends_with(".parquet") {
        return super::parquet_docs::read(path, column, sink);
    }
    let io = |source| DocsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let reader: Box<dyn Read> = if name.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    for (i, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: String| DocsError::BadLine {
            path: path.to_path_buf(),
            line: i + 1,
            why,
        };
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| bad(format!("not JSON: {e}")))?;
        match v.get(column) {
            Some(serde_json::Value::String(s)) => sink(s.clone())?,
            Some(other) => return Err(bad(format!("{column:?} is not a string: {other}"))),
            None => return Err(bad(format!("no {column:?} key"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Domain, Sampler, Split};

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data")
    }

    fn expected() -> serde_json::Value {
        let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn corpus(path: &str) -> Result<DocCorpus, DocsError> {
        DocCorpus::from(DocsSpec {
            path: path.into(),
            tokenizer: "tokenizer.json".into(),
            text_column: "text".into(),
        })
        .load(&fixtures(), 8)
    }

    fn all_docs(c: &DocCorpus) -> Vec<String> {
        c.loaded().docs.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn the_tokenizer_gives_the_ids_hugging_face_tokenizers_gives() {
        let e = expected();
        let c = corpus("docs.jsonl").unwrap();
        assert_eq!(c.vocab(), Some(e["vocab_size"].as_u64().unwrap() as usize));
        for probe in e["encodings"].as_array().unwrap() {
            let text = probe["text"].as_str().unwrap();
            let want: Vec<u32> = serde_json::from_value(probe["ids"].clone()).unwrap();
            assert_eq!(c.encode(text), want, "{text:?}");
            assert_eq!(want[0] as u64, e["bos_id"].as_u64().unwrap());
        }
    }

    #[test]
    fn jsonl_gzip_and_parquet_hold_the_same_documents() {
        let want: Vec<String> = serde_json::from_value(expected()["documents"].clone()).unwrap();
        for f in [
            "docs.jsonl",
            "docs.jsonl.gz",
            "docs.parquet",
            "docs_gzip.parquet",
        ] {
            let c = corpus(f).unwrap();
            assert_eq!(all_docs(&c), want, "{f}");
            assert_eq!(c.size().unwrap().0, 1, "{f}");
        }
        // A directory holds every format: each document four times, files in name order.
        let dir = corpus(".").unwrap();
        assert_eq!(dir.size().unwrap().0, 4);
        assert_eq!(dir.size().unwrap().1, 4 * want.len());
    }

    #[test]
    fn rows_are_packed_documents_starting_with_bos() {
        let c = corpus("docs.parquet").unwrap();
        let bos = expected()["bos_id"].as_u64().unwrap() as u32;
        let d = Domain::Docs(c.clone());
        for split in [Split::Train, Split::Heldout] {
            let mut s = Sampler::new(d.clone(), 3, split, 8, 0);
            let b = s.next_batch(2, 255);
            assert_eq!(b.tokens.len(), 2 * 256);
            assert_eq!(b.tokens[0], bos, "a row starts at a document");
            let docs_in_row = b.tokens[..256].iter().filter(|t| **t == bos).count();
            assert!(docs_in_row >= 2, "rows are packed: {docs_in_row} documents");
            assert!(b.tokens.iter().all(|t| (*t as usize) < c.vocab().unwrap()));
        }
        // Held-out documents are never trained on.
        let mut train = Sampler::new(d.clone(), 3, Split::Train, 8, 0);
        for _ in 0..200 {
            assert!(!is_heldout(&train.next_sample_bytes(), 8));
        }
    }

    #[test]
    fn every_bad_input_has_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let tok = fixtures().join("tokenizer.json");
        let load = |path: &Path, column: &str| {
            DocCorpus::from(DocsSpec {
                path: path.into(),
                tokenizer: tok.clone(),
                text_column: column.into(),
            })
            .load(Path::new("/"), 8)
        };
        let err = load(&fixtures().join("docs.parquet"), "body").unwrap_err();
        assert!(
            matches!(&err, DocsError::NoColumn { have, .. } if have == "url, text, id"),
            "{err}"
        );
        let bad = dir.path().join("bad.jsonl");
        std::fs::write(&bad, "{\"text\": \"a\"}\n\n{\"text\": 3}\n").unwrap();
        let err = load(&bad, "text").unwrap_err();
        assert!(matches!(err, DocsError::BadLine { line: 3, .. }), "{err}");
        std::fs::write(&bad, "{\"text\": \"a\"}\nnot json\n").unwrap();
        assert!(matches!(
            load(&bad, "text"),
            Err(DocsError::BadLine { line: 2, .. })
        ));
        std::fs::write(&bad, "{\"body\": \"a\"}\n").unwrap();
        assert!(matches!(
            load(&bad, "text"),
            Err(DocsError::BadLine { line: 1, .. })
        ));
        std::fs::write(&bad, "{\"text\": \"only one document\"}\n").unwrap();
        assert!(matches!(
            load(&bad, "text"),
            Err(DocsError::TooSmall { docs: 1, .. })
        ));
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        std::fs::write(empty.join("notes.txt"), "not a document file").unwrap();
        assert!(matches!(load(&empty, "text"), Err(DocsError::Empty(_))));
        let fake = dir.path().join("fake.parquet");
        std::fs::write(&fake, b"PAR1 this is not parquet").unwrap();
        assert!(matches!(
            load(&fake, "text"),
            Err(DocsError::Parquet { .. })
        ));
        assert!(matches!(
            load(&dir.path().join("missing.jsonl"), "text"),
            Err(DocsError::Io { .. })
        ));
        let err = DocCorpus::from(DocsSpec {
            path: fixtures().join("docs.jsonl"),
            tokenizer: bad.clone(),
            text_column: "text".into(),
        })
        .load(Path::new("/"), 8)
        .unwrap_err();
        assert!(matches!(err, DocsError::Tokenizer { .. }), "{err}");
    }
}
