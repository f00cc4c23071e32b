#!/usr/bin/env node
// The `edit` command (package.json "bin"): runs cli/edit.ts through tsx, found beside this file.
import { register } from "tsx/esm/api";

register();
await import("../cli/edit.ts");
