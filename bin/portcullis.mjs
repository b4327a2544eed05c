#!/usr/bin/env node
// Entry point of the `portcullis` command: runs the TypeScript sources through tsx's loader, so a
// clean clone works after `npm install` with no build step.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
