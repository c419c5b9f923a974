// The SIGKILL test's child process (layer: ops/store/, test support; run by kill.test.ts): commits the batches of
// sequence.ts to a FileStore on the real disk (NodeFs) in DIR, one after the other, and prints each returned
// sequence number on stdout only after commit returned. The parent kills it with SIGKILL mid-sequence.
import { writeSync } from "node:fs";
import { NodeFs } from "./fs.ts";
import { FileStore } from "./store.ts";
import { batches } from "./sequence.ts";

const dir = process.argv[2];
if (!dir) throw new Error("usage: kill-child.ts DIR");
const all = batches(Number(process.argv[3] ?? 100000));
const store = new FileStore(new NodeFs(dir));
for (const b of all) writeSync(1, `${store.commitSync(b)}\n`);
