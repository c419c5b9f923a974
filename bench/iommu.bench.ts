// The cost of confining the I/O partition's DMA with the IOMMU (docs/specs/storage-channel.md §9): the storage
// benchmark's boot (bench/storage.bench.ts, under -icount) twice, without and with `host.iommu`. With it, DMA_ADDR also
// maps the page it validated into the device's second-level tables and DMA_DONE unmaps a request's client pages
// with an IOTLB invalidation, and
// QEMU translates every device access through them — device work takes no virtual time under -icount, so the figures
// are the ultravisor's and the I/O partition's instructions, and the requests per virtual second they allow.
import { type Bench, type Figure, round } from "./bench.ts";
import { storageRun } from "./storage.bench.ts";

const bench: Bench = {
  name: "iommu",
  async run(): Promise<Figure[]> {
    const off = await storageRun(false);
    const on = await storageRun(true);
    return [
      { bench: "iommu.off.channel.instructions_per_4k", value: off.channelMedian, unit: `I/O partition + monitor instructions per 4 KiB read through the channel, no IOMMU (median of ${off.channelSamples}; -icount)` },
      { bench: "iommu.on.channel.instructions_per_4k", value: on.channelMedian, unit: `the same behind the IOMMU (median of ${on.channelSamples}; DMA_ADDR maps each page, DMA_DONE unmaps a request's pages with an IOTLB invalidation)`,
        vs: "iommu.off.channel.instructions_per_4k", ratio: round(on.channelMedian / off.channelMedian, 3) },
      { bench: "iommu.off.direct.instructions_per_4k", value: off.directMedian, unit: `the I/O partition's own 4 KiB read, no IOMMU (median of ${off.samples}; device time excluded)` },
      { bench: "iommu.on.direct.instructions_per_4k", value: on.directMedian, unit: `the same behind the IOMMU (median of ${on.samples})`,
        vs: "iommu.off.direct.instructions_per_4k", ratio: round(on.directMedian / off.directMedian, 3) },
      { bench: "iommu.off.channel.requests_per_s", value: Math.round(off.channelRate), unit: `4 KiB reads per virtual second through the channel, no IOMMU (${off.reads} reads, 6 in flight)` },
      { bench: "iommu.on.channel.requests_per_s", value: Math.round(on.channelRate), unit: `the same behind the IOMMU (${on.reads} reads)`,
        vs: "iommu.off.channel.requests_per_s", ratio: round(on.channelRate / off.channelRate, 3) },
    ];
  },
};

export default bench;
