#!/usr/bin/env node
// Entry point: loads only the compiled CLI; heavy modules load on demand.
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
