// placeholder until the create command lands
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';

export function registerCreate(_program: Command, _ctx: CommandContext): void {}
