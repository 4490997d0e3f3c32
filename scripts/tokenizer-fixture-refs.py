#!/usr/bin/env python3
# Write reference encodings for tests/fixtures/tokenizer: for each string in strings.json, the ids
# and pieces of SentencePieceProcessor.encode (no BOS/EOS) and decode(ids). Uses the Debian
# python3-sentencepiece binding (run with /usr/bin/python3), the same library as spm_encode, because
# spm_encode reads one line at a time and so cannot encode strings that contain newlines.
# Usage: /usr/bin/python3 scripts/tokenizer-fixture-refs.py MODEL strings.json > refs.jsonl
import json
import sys

import sentencepiece as spm

sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
for text in json.load(open(sys.argv[2], encoding="utf-8")):
    ids = sp.encode(text)
    row = {"text": text, "ids": ids, "pieces": [sp.id_to_piece(i) for i in ids], "decoded": sp.decode(ids)}
    sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
