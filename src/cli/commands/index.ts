// Every CLI command, in the order `mobilellm --help` lists them.
import type { Command } from "../command.js";
import { ablate } from "./ablate.js";
import { convert } from "./convert.js";
import { evalCommand } from "./eval.js";
import { generate } from "./generate.js";
import { info } from "./info.js";
import { ppl } from "./ppl.js";
import { prepare } from "./prepare.js";
import { pretrain } from "./pretrain.js";
import { tokenize } from "./tokenize.js";
import { trainTokenizer } from "./train-tokenizer.js";

export const COMMANDS: Command[] = [generate, info, tokenize, ppl, evalCommand, convert, trainTokenizer, prepare, pretrain, ablate];
