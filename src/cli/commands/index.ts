// Every CLI command, in the order `mobilellm --help` lists them.
import type { Command } from "../command.js";
import { generate } from "./generate.js";
import { info } from "./info.js";
import { prepare } from "./prepare.js";
import { pretrain } from "./pretrain.js";

export const COMMANDS: Command[] = [generate, info, prepare, pretrain];
