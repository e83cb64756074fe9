#!/usr/bin/env python3
"""Makes the tokenizer and document-corpus fixtures in tests/fixtures/data/.

- tokenizer.json: a byte-level BPE shaped like DeepSeek-V2's (a Split pre-tokenizer with a
  look-ahead regex, so the Rust side needs fancy-regex as it does for DeepSeek's; ByteLevel;
  a BOS special token added by a TemplateProcessing post-processor), trained with Hugging Face
  `tokenizers` on the documents below.
- docs.jsonl, docs.jsonl.gz, docs.parquet (pyarrow, snappy; plus an `id` and a `url` column,
  as C4 has) and docs_gzip.parquet (gzip pages): the same documents in each format.
- expected.json: the documents, and the ids `tokenizers` gives a few texts (with special
  tokens), which the Rust tokenizer must reproduce exactly.

CI needs no Python: the fixtures are committed.

    /tmp/dsvenv/bin/pip install tokenizers pyarrow
    /tmp/dsvenv/bin/python scripts/data_fixtures.py [--out tests/fixtures/data]
"""

import argparse
import gzip
import json
import os
import random

import pyarrow as pa
import pyarrow.parquet as pq
import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"

WORDS = (
    "the expert group trains its routed experts while validators score every submission on "
    "held out text and merge the best into the global model weights are committed on chain "
    "where consensus turns them into rewards miners fetch the newest model each cycle"
).split()


def documents(n, seed):
    r = random.Random(seed)
    out = []
    for i in range(n):
        words = [r.choice(WORDS) for _ in range(r.randint(8, 40))]
        text = " ".join(words).capitalize() + "."
        if i % 5 == 0:
            text += f"\n\nSection {i}: numbers 12{i} and 3.{i}, ünïcödé, 数据 ok!"
        out.append(text)
    return out


def make_tokenizer(docs):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\s+(?!\S)|\s+|\p{N}{1,3}|[^\s\p{L}\p{N}]+|\p{L}+"), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=[BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(docs, trainer)
    bos = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos)]
    )
    return tok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/data")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    docs = documents(60, 7)
    tok = make_tokenizer(docs)
    tok.save(os.path.join(a.out, "tokenizer.json"))
    rows = [{"text": d, "id": i, "url": f"https://example.org/{i}"} for i, d in enumerate(docs)]
    with open(os.path.join(a.out, "docs.jsonl"), "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with gzip.open(os.path.join(a.out, "docs.jsonl.gz"), "wt", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    table = pa.table(
        {
            "url": [r["url"] for r in rows],
            "text": [r["text"] for r in rows],
            "id": [r["id"] for r in rows],
        }
    )
    pq.write_table(table, os.path.join(a.out, "docs.parquet"), compression="snappy", row_group_size=25)
    pq.write_table(table, os.path.join(a.out, "docs_gzip.parquet"), compression="gzip")
    probes = [docs[0], docs[5], "Hello  world!\n\n  12345 ünïcödé 数据", "", "   "]
    expected = {
        "tokenizers_version": tokenizers.__version__,
        "pyarrow_version": pa.__version__,
        "vocab_size": tok.get_vocab_size(with_added_tokens=True),
        "bos_id": tok.token_to_id(BOS),
        "documents": docs,
        "encodings": [{"text": t, "ids": tok.encode(t).ids} for t in probes],
    }
    with open(os.path.join(a.out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
    print(f"wrote {a.out}: vocab {expected['vocab_size']}, {len(docs)} documents")


if __name__ == "__main__":
    main()
