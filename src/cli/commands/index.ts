// Every CLI command, in the order `mobilellm --help` lists them.
import type { Command } from "../command.js";
import { evalCommand } from "./eval.js";
import { generate } from "./generate.js";
import { info } from "./info.js";
import { ppl } from "./ppl.js";
import { tokenize } from "./tokenize.js";

export const COMMANDS: Command[] = [generate, info, tokenize, ppl, evalCommand];
