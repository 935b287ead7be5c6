// placeholder until the tracker command lands
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';

export function registerTracker(_program: Command, _ctx: CommandContext): void {}
