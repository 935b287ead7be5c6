#!/usr/bin/env -S node --max-semi-space-size=4
// The kfetch command line: builds the commander program from one module per command, wires the global
// options, the logger and the shutdown signal, and is the only place that sets the exit code.

import { Command, CommanderError, Option } from 'commander';
import type { Logger } from 'pino';
import { KfetchError, isKfetchError } from '../errors.js';
import { createLogger } from '../log.js';
import { defaultHome } from './home.js';
import { VERSION } from '../version.js';
import type { CommandContext, GlobalOptions } from './context.js';
import { registerCreate } from './commands/create.js';
import { registerTracker } from './commands/tracker.js';
import { registerSeed } from './commands/seed.js';
import { registerGet } from './commands/get.js';
import { registerResume } from './commands/resume.js';
import { registerStatus } from './commands/status.js';
import { registerDemo } from './commands/demo.js';
import { registerRemove } from './commands/remove.js';
import { registerBox } from './commands/box.js';

export function buildProgram(ctx: CommandContext): Command {
  const program = new Command('kfetch')
    .description('kfetch: a fast, crash-safe peer for the Kascade peer-to-peer file protocol')
    .version(VERSION, '-V, --version', 'print the kfetch version')
    .addOption(
      new Option('--home <dir>', 'state directory (SQLite database, lock file)').env('KFETCH_HOME').default(defaultHome()),
    )
    .option('--log-json', 'log one JSON object per line on stderr instead of readable lines', false)
    .option('-v, --verbose', 'log debug detail', false)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerCreate(program, ctx);
  registerTracker(program, ctx);
  registerSeed(program, ctx);
  registerGet(program, ctx);
  registerResume(program, ctx);
  registerStatus(program, ctx);
  registerRemove(program, ctx);
  registerBox(program, ctx);
  registerDemo(program, ctx);
  return program;
}

async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  let program: Command | undefined;
  let logger: Logger | undefined;
  const globals = (): GlobalOptions => {
    const o = program?.opts<{ home: string; logJson: boolean; verbose: boolean }>();
    return { home: o?.home ?? defaultHome(), logJson: o?.logJson ?? false, verbose: o?.verbose ?? false };
  };
  const ctx: CommandContext = {
    globals,
    log: () => (logger ??= createLogger({ json: globals().logJson, verbose: globals().verbose })),
    shutdown: controller.signal,
    out: process.stdout,
  };
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signalled !== undefined) {
      process.stderr.write(`kfetch: second ${sig}, exiting now\n`);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    }
    signalled = sig;
    controller.abort(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  program = buildProgram(ctx);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit through here with code 0; parse errors were already printed by commander.
      return err.exitCode === 0 ? 0 : 2;
    }
    // A command cut short by a signal (its abort reason surfaces as the error): say so, exit 128 + signal.
    if (signalled !== undefined && (!isKfetchError(err) || err.code === 'KF_E_INTERRUPTED')) {
      process.stderr.write(`kfetch: ${isKfetchError(err) ? err.message : `interrupted by ${signalled}`}\n`);
      return signalled === 'SIGTERM' ? 143 : 130;
    }
    if (isKfetchError(err)) {
      if (globals().logJson) process.stderr.write(`${JSON.stringify({ level: 'error', ...err.toJSON() })}\n`);
      else process.stderr.write(`kfetch: ${err.toLine()}\n`);
      return err.exitCode;
    }
    const wrapped = new KfetchError('KF_E_INTERNAL', err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.stderr.write(`kfetch: ${wrapped.toLine()}\n`);
    return wrapped.exitCode;
  }
}

process.exitCode = await main(process.argv);
