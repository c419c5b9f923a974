// The simulated host's processors and NUMA nodes: which memory range and which physical CPUs belong to each node.
// The resource service uses it for node affinity ([0148]: cache and memory locality) when it chooses memory and
// processors; the resource database itself knows nothing of nodes.
import { formatBytes } from "../core/mapview.ts";

export interface NodeConfig {
  /** Bytes of memory on this node; nodes cover memory in address order. */
  memory: bigint;
  pcpus: number;
}

export interface NumaNode {
  id: number;
  base: bigint;
  end: bigint;
  pcpus: number[];
}

export class TopologyError extends Error {
  override name = "TopologyError";
}

export class Topology {
  readonly nodes: NumaNode[];
  readonly pcpus: number;

  /** One node with all memory and `pcpus` CPUs when `nodes` is absent. */
  constructor(installed: bigint, pcpus: number, nodes?: NodeConfig[]) {
    if (!nodes || nodes.length === 0) {
      if (!Number.isInteger(pcpus) || pcpus < 1 || pcpus > 4096) throw new TopologyError(`pcpus ${pcpus} is not in 1..4096`);
      this.nodes = [{ id: 0, base: 0n, end: installed, pcpus: Array.from({ length: pcpus }, (_, i) => i) }];
      this.pcpus = pcpus;
      return;
    }
    let base = 0n;
    let cpu = 0;
    this.nodes = nodes.map((n, id) => {
      if (n.pcpus < 1) throw new TopologyError(`node ${id} needs at least one processor`);
      const node = { id, base, end: base + n.memory, pcpus: Array.from({ length: n.pcpus }, (_, i) => cpu + i) };
      base += n.memory;
      cpu += n.pcpus;
      return node;
    });
    if (base !== installed) {
      throw new TopologyError(`the nodes' memory adds up to ${formatBytes(base)}, the host has ${formatBytes(installed)}`);
    }
    if (pcpus !== cpu) throw new TopologyError(`the nodes have ${cpu} processors, the host has ${pcpus}`);
    this.pcpus = cpu;
  }

  node(id: number): NumaNode {
    const n = this.nodes[id];
    if (!n) throw new TopologyError(`no node ${id} (the host has ${this.nodes.length})`);
    return n;
  }

  nodeOfAddress(a: bigint): number {
    return this.nodes.find((n) => a >= n.base && a < n.end)?.id ?? -1;
  }

  nodeOfPcpu(p: number): number {
    return this.nodes.find((n) => n.pcpus.includes(p))?.id ?? -1;
  }
}

export interface VcpuNeed {
  duty: number;
  dedicated: boolean;
  /** The processor it prefers ([0148]; a definition's `pcpu`): taken when the host has it and it has room. */
  pcpu?: number;
}

/**
 * Chooses a physical CPU for each VCPU of one partition: first fit over the node's CPUs (lowest number with room,
 * preferring one that holds no other VCPU of this partition, so an SMP guest's VCPUs can run at once), then the other
 * nodes. First fit keeps whole CPUs idle for the idle partition to halt ([0074]). `load` is the quanta already
 * promised per CPU (16 = full) and is updated. Returns the CPUs, or throws naming the VCPU that does not fit.
 */
export function choosePcpus(topo: Topology, node: number, load: number[], vcpus: VcpuNeed[], who: string): number[] {
  const order = [...topo.node(node).pcpus, ...topo.nodes.filter((n) => n.id !== node).flatMap((n) => n.pcpus)];
  const mine = new Set<number>();
  return vcpus.map((v, i) => {
    const need = v.dedicated ? 16 : v.duty;
    const fits = (p: number): boolean => (v.dedicated ? load[p] === 0 : (load[p] ?? 0) + need <= 16);
    const preferred = v.pcpu !== undefined && v.pcpu < topo.pcpus && fits(v.pcpu) ? v.pcpu : undefined;
    const p = preferred ?? order.find((c) => fits(c) && !mine.has(c)) ?? order.find(fits);
    if (p === undefined) {
      throw new TopologyError(`${who}: no processor has ${v.dedicated ? "a whole CPU" : `${need}/16 of a cycle`} free for VCPU ${i}`);
    }
    load[p] = (load[p] ?? 0) + need;
    mine.add(p);
    return p;
  });
}
