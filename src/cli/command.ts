import { AppConfig } from '../config/app-config';
import { ArgumentSpec, ParsedArguments } from './arguments';

/** One CLI command: the words that name it, what it accepts, and what it does. */
export interface Command {
  /** The words that select it, e.g. `['users', 'add']`. */
  name: readonly string[];
  /** The synopsis after `gatehouse`, shown in help and in usage errors. */
  usage: string;
  summary: string;
  arguments: ArgumentSpec;
  run(parsed: ParsedArguments, config: AppConfig): Promise<void>;
}
