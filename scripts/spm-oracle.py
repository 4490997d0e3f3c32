#!/usr/bin/env python3
# Reference SentencePiece answers for tokenizer checks (Debian: apt-get install python3-sentencepiece;
# run with the system python, /usr/bin/python3). Reads JSON lines on stdin:
#   {"encode": "text"}  ->  {"ids": [...], "pieces": [...]}
#   {"decode": [ids]}   ->  {"text": "..."}
# Usage: /usr/bin/python3 scripts/spm-oracle.py path/to/tokenizer.model < requests.jsonl
import json
import sys

import sentencepiece as spm

sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
for line in sys.stdin:
    req = json.loads(line)
    if "encode" in req:
        ids = sp.encode(req["encode"])
        out = {"ids": ids, "pieces": [sp.id_to_piece(i) for i in ids]}
    else:
        out = {"text": sp.decode(req["decode"])}
    sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
