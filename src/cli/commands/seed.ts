// placeholder until the seed command lands
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';

export function registerSeed(_program: Command, _ctx: CommandContext): void {}
