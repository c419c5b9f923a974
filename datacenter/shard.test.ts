// A data-center shard places first fit through each host's database: worked by hand for two 8 GB hosts (each has
// 8 GB − 128 MB of service partitions − the database's own pages free) and 3 GB partitions — two fit per host, the
// fifth fits nowhere — and a partition no host can hold is counted unplaced, not forced.
import { describe, expect, it } from "vitest";
import { runShard } from "./shard.ts";

const G = 1n << 30n;

describe("data-center shard", () => {
  it("fills hosts first fit, as each host's database reports them", async () => {
    const r = await runShard({ hosts: 2, hostMemory: 8n * G, pcpus: 8, partitions: Array.from({ length: 5 }, () => ({ memory: 3n * G, vcpus: 1 })) });
    expect(r.perHost).toEqual([2, 2]);
    expect(r).toMatchObject({ placed: 4, unplaced: 1 });
    expect(r.transactions).toBeGreaterThanOrEqual(4);
  });

  it("a smaller partition after a refused large one still takes the first host with room", async () => {
    const r = await runShard({ hosts: 2, hostMemory: 8n * G, pcpus: 8, partitions: [{ memory: 6n * G, vcpus: 1 }, { memory: 7n * G, vcpus: 1 }, { memory: 1n * G, vcpus: 1 }, { memory: 8n * G, vcpus: 1 }] });
    // 6 GB → host 0 (1.87 GB left); 7 GB → host 1; 1 GB → host 0; 8 GB → nowhere.
    expect(r.perHost).toEqual([2, 1]);
    expect(r).toMatchObject({ placed: 3, unplaced: 1 });
  });
});
