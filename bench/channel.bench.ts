// Benchmark: memory-channel signals per second through core.wasm (insert + remove of one 64-byte signal = one
// signal). Two figures: the batch path (chan_pump: the loop runs inside wasm, as a server draining a queue does) and
// one JS -> wasm call per insert and per remove. Target (issue 6): >= 10 M signals/s.
import { bestOf, round, type Bench, type Figure } from "./bench.ts";
import { carve, ChannelType, loadChannelCore, Q } from "../core/channel.ts";

const bench: Bench = {
  name: "channel",
  async run(): Promise<Figure[]> {
    const { core, chan } = await loadChannelCore();
    const base = carve(core, 1 << 20);
    const size = chan.chan_format_bytes(2, 64, 256);
    if (chan.chan_format(base, size, 2, 64, 256, ChannelType.storage) !== Q.OK) throw new Error("chan_format failed");
    const src = base + size + 64;
    const dst = src + 128;
    const n = 2_000_000;
    chan.chan_pump(base, size, 0, src, dst, 100_000); // warm up
    const batch = await bestOf(5, () => {
      if (chan.chan_pump(base, size, 0, src, dst, n) !== n) throw new Error("chan_pump stopped early");
    });
    const calls = 1_000_000;
    for (let i = 0; i < 100_000; i++) {
      chan.chan_insert(base, size, 1, src);
      chan.chan_remove(base, size, 1, dst);
    }
    const perCall = await bestOf(5, () => {
      for (let i = 0; i < calls; i++) {
        chan.chan_insert(base, size, 1, src);
        chan.chan_remove(base, size, 1, dst);
      }
    });
    const batchRate = n / batch;
    const callRate = calls / perCall;
    return [
      { bench: "channel.signals_per_s.batch_in_wasm", value: Math.round(batchRate), unit: "signals/s", vs: "target 10M/s", ratio: round(batchRate / 10e6) },
      { bench: "channel.signals_per_s.js_call_each", value: Math.round(callRate), unit: "signals/s", vs: "target 10M/s", ratio: round(callRate / 10e6) },
    ];
  },
};

export default bench;
