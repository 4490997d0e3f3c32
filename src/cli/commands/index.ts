// Every CLI command, in the order `mobilellm --help` lists them.
import type { Command } from "../command.js";
import { generate } from "./generate.js";
import { info } from "./info.js";
import { tokenize } from "./tokenize.js";

export const COMMANDS: Command[] = [generate, info, tokenize];
