// The FAT file system inside the ESP: picks FAT32 or FAT16 and the cluster size by the Microsoft FAT specification's
// rules, builds the directory tree (8.3 + VFAT long names, "." and ".."), allocates clusters contiguously and writes
// boot sector, FSInfo and backups, both FATs, directories and file data into a SparseImage. Layout and rules:
// docs/specs/esp-disk.md. Called by esp.ts; the only writer of FAT structures in the project.
import { assignShortNames, lfnEntries, lfnEntryCount, validateLongName } from "./names.ts";
import type { SparseImage } from "./sparse.ts";

const SECTOR = 512;
const DIR_ENTRY = 32;
const ATTR_VOLUME_ID = 0x08;
const ATTR_DIRECTORY = 0x10;
const ATTR_ARCHIVE = 0x20;
const MIN_FAT16_CLUSTERS = 4085;
const MIN_FAT32_CLUSTERS = 65525;
/** A directory may hold at most 65536 entries (the spec's limit; the '.'-relative index is 16-bit). */
const MAX_DIR_ENTRIES = 65536;

export type FatType = "FAT16" | "FAT32";

export interface FatGeometry {
  type: FatType;
  totalSectors: number;
  sectorsPerCluster: number;
  reservedSectors: number;
  fatSectors: number;
  /** FAT16 only: entries of the fixed root directory (0 for FAT32). */
  rootEntries: number;
  rootDirSectors: number;
  firstDataSector: number;
  clusterCount: number;
}

/** Sectors per cluster from the specification's FAT32 sizing table, 0 where FAT32 is not allowed. */
function fat32ClusterSectors(sectors: number): number {
  if (sectors <= 66600) return 0;
  if (sectors <= 532480) return 1;
  if (sectors <= 16777216) return 8;
  if (sectors <= 33554432) return 16;
  if (sectors <= 67108864) return 32;
  return 64;
}

/** Sectors per cluster from the FAT16 sizing table, 0 where FAT16 is not allowed. */
function fat16ClusterSectors(sectors: number): number {
  if (sectors <= 8400) return 0;
  if (sectors <= 32680) return 2;
  if (sectors <= 262144) return 4;
  if (sectors <= 524288) return 8;
  if (sectors <= 1048576) return 16;
  if (sectors <= 2097152) return 32;
  if (sectors <= 4194304) return 64;
  return 0;
}

function fit(type: FatType, totalSectors: number, spc: number, rootEntries: number): FatGeometry {
  const reservedSectors = type === "FAT32" ? 32 : 1;
  const rootDirSectors = type === "FAT32" ? 0 : (rootEntries * DIR_ENTRY) / SECTOR;
  const entryBytes = type === "FAT32" ? 4 : 2;
  // Size the FAT for every cluster the space could hold without FATs: an upper bound, so the FAT never falls short.
  const upper = Math.floor((totalSectors - reservedSectors - rootDirSectors) / spc);
  const fatSectors = Math.ceil(((upper + 2) * entryBytes) / SECTOR);
  const firstDataSector = reservedSectors + 2 * fatSectors + rootDirSectors;
  const clusterCount = Math.floor((totalSectors - firstDataSector) / spc);
  return {
    type,
    totalSectors,
    sectorsPerCluster: spc,
    reservedSectors,
    fatSectors,
    rootEntries: type === "FAT32" ? 0 : rootEntries,
    rootDirSectors,
    firstDataSector,
    clusterCount,
  };
}

/** FAT32 if the partition holds enough clusters for it, else FAT16; throws if neither fits. */
export function chooseGeometry(totalSectors: number, rootEntriesNeeded = 0): FatGeometry {
  const spc32 = fat32ClusterSectors(totalSectors);
  if (spc32) {
    const g = fit("FAT32", totalSectors, spc32, 0);
    if (g.clusterCount >= MIN_FAT32_CLUSTERS) return g;
  }
  const spc16 = fat16ClusterSectors(totalSectors);
  if (!spc16) {
    const mib = (totalSectors * SECTOR) / 2 ** 20;
    throw new Error(
      `a ${mib.toFixed(2)} MiB partition is too small for FAT16 (needs more than 8400 sectors, 4.1 MiB); ` +
        `FAT12 is not supported: use a larger image`,
    );
  }
  const rootEntries = Math.max(512, Math.ceil(rootEntriesNeeded / 16) * 16);
  if (rootEntries > 0xfff0) throw new Error(`the root directory needs ${rootEntriesNeeded} entries; FAT16 allows 65520`);
  const g = fit("FAT16", totalSectors, spc16, rootEntries);
  if (g.clusterCount < MIN_FAT16_CLUSTERS || g.clusterCount >= MIN_FAT32_CLUSTERS)
    throw new Error(`internal: FAT16 geometry for ${totalSectors} sectors has ${g.clusterCount} clusters`);
  return g;
}

export interface FatFile {
  /** Absolute path, "/" separated, for example "/EFI/BOOT/BOOTX64.EFI". */
  path: string;
  data: Uint8Array;
}

export interface FatOptions {
  /** Volume label, at most 11 short-name characters; "NO NAME" for none. */
  label: string;
  volumeId: number;
  /** Timestamp of every directory entry. */
  time: Date;
  /** LBA of the partition on the disk (BPB hidden sectors). */
  hiddenSectors: number;
  /** Empty directories to create besides those the files imply. */
  directories?: readonly string[];
}

export interface FatSummary {
  geometry: FatGeometry;
  clusterBytes: number;
  usedClusters: number;
  freeClusters: number;
}

interface FileNode {
  kind: "file";
  name: string;
  data: Uint8Array;
  cluster: number;
}

interface DirNode {
  kind: "dir";
  name: string;
  path: string;
  parent: DirNode | null;
  children: Node[];
  byUpper: Map<string, Node>;
  cluster: number;
  clusters: number;
}

type Node = FileNode | DirNode;

function newDir(name: string, path: string, parent: DirNode | null): DirNode {
  return { kind: "dir", name, path, parent, children: [], byUpper: new Map(), cluster: 0, clusters: 0 };
}

/** Folds ASCII case the way FAT compares names (non-ASCII is compared as is). */
const fold = (s: string) => s.replace(/[a-z]/g, (c) => c.toUpperCase());

function splitPath(path: string): string[] {
  if (!path.startsWith("/")) throw new Error(`file path "${path}" must be absolute (start with "/")`);
  const parts = path.slice(1).split("/");
  parts.forEach((p) => validateLongName(p, `path "${path}"`));
  return parts;
}

function buildTree(files: readonly FatFile[], directories: readonly string[]): DirNode {
  const root = newDir("", "/", null);
  const dirAt = (parts: string[], path: string): DirNode => {
    let dir = root;
    for (const part of parts) {
      const existing = dir.byUpper.get(fold(part));
      if (existing && existing.kind === "file")
        throw new Error(`path "${path}": "${existing.name}" in ${dir.path} is a file, not a directory`);
      if (existing && existing.name !== part)
        throw new Error(`path "${path}": "${part}" and "${existing.name}" in ${dir.path} differ only in case`);
      if (existing) {
        dir = existing;
        continue;
      }
      const child = newDir(part, `${dir.path === "/" ? "" : dir.path}/${part}`, dir);
      dir.children.push(child);
      dir.byUpper.set(fold(part), child);
      dir = child;
    }
    return dir;
  };
  for (const d of directories) if (d !== "/") dirAt(splitPath(d), d);
  for (const f of files) {
    const parts = splitPath(f.path);
    const name = parts.pop()!;
    const dir = dirAt(parts, f.path);
    const existing = dir.byUpper.get(fold(name));
    if (existing) {
      const what = existing.kind === "dir" ? "a directory" : "another file";
      throw new Error(`path "${f.path}": ${dir.path} already has ${what} named "${existing.name}" (FAT ignores case)`);
    }
    const node: FileNode = { kind: "file", name, data: f.data, cluster: 0 };
    dir.children.push(node);
    dir.byUpper.set(fold(name), node);
  }
  return root;
}

/** 32-byte slots a directory needs: dot entries or the label, then each child's LFN entries and short entry. */
function entryCount(dir: DirNode, isRoot: boolean, hasLabel: boolean, shortNeedsLfn: boolean[]): number {
  let n = isRoot ? (hasLabel ? 1 : 0) : 2;
  dir.children.forEach((c, i) => (n += 1 + (shortNeedsLfn[i] ? lfnEntryCount(c.name) : 0)));
  return n;
}

function fatDate(t: Date): { date: number; time: number } {
  const year = t.getUTCFullYear();
  if (!(year >= 1980 && year <= 2107)) throw new Error(`timestamp ${t.toISOString()} is outside FAT's 1980–2107 range`);
  return {
    date: ((year - 1980) << 9) | ((t.getUTCMonth() + 1) << 5) | t.getUTCDate(),
    time: (t.getUTCHours() << 11) | (t.getUTCMinutes() << 5) | (t.getUTCSeconds() >> 1),
  };
}

function dirEntry(out: DataView, at: number, name: Uint8Array, attr: number, cluster: number, size: number, stamp: { date: number; time: number }): void {
  for (let i = 0; i < 11; i++) out.setUint8(at + i, name[i]!);
  out.setUint8(at + 11, attr);
  out.setUint16(at + 14, stamp.time, true); // creation time
  out.setUint16(at + 16, stamp.date, true); // creation date
  out.setUint16(at + 18, stamp.date, true); // last access date
  out.setUint16(at + 20, cluster >>> 16, true);
  out.setUint16(at + 22, stamp.time, true); // write time
  out.setUint16(at + 24, stamp.date, true); // write date
  out.setUint16(at + 26, cluster & 0xffff, true);
  out.setUint32(at + 28, size, true);
}

const ascii11 = (s: string) => Uint8Array.from(s.padEnd(11, " "), (c) => c.charCodeAt(0));

export function normalizeLabel(label: string): string {
  const up = fold(label);
  if (up.length > 11 || !/^[A-Z0-9 !#$%&'()\-@^_`{}~]*$/.test(up) || up.startsWith(" "))
    throw new Error(`volume label "${label}" must be at most 11 letters, digits, spaces or ! # $ % & ' ( ) - @ ^ _ \` { } ~`);
  return up.trimEnd() === "" ? "NO NAME" : up.trimEnd();
}

/** Formats the partition occupying `sectors` sectors from byte `offset` of `image` and stores `files` in it. */
export function writeFat(image: SparseImage, offset: number, sectors: number, files: readonly FatFile[], options: FatOptions): FatSummary {
  const label = normalizeLabel(options.label);
  const hasLabel = label !== "NO NAME";
  const stamp = fatDate(options.time);
  const root = buildTree(files, options.directories ?? []);

  // Short names and entry counts per directory; the root's count decides FAT16's root region size.
  const dirs: DirNode[] = [];
  const names = new Map<DirNode, ReturnType<typeof assignShortNames>>();
  const slots = new Map<DirNode, number>();
  const walk = (d: DirNode) => {
    dirs.push(d);
    const assigned = assignShortNames(d.children.map((c) => c.name));
    names.set(d, assigned);
    const n = entryCount(d, d === root, hasLabel, assigned.map((a) => a.needsLfn));
    if (n > MAX_DIR_ENTRIES) throw new Error(`directory ${d.path} needs ${n} entries; FAT allows ${MAX_DIR_ENTRIES}`);
    slots.set(d, n);
    for (const c of d.children) if (c.kind === "dir") walk(c);
  };
  walk(root);

  const g = chooseGeometry(sectors, slots.get(root)!);
  const clusterBytes = g.sectorsPerCluster * SECTOR;
  const clustersFor = (bytes: number) => Math.ceil(bytes / clusterBytes);

  // Pre-order contiguous allocation from cluster 2.
  let next = 2;
  const chains: [number, number][] = []; // [first cluster, count]
  const place = (count: number): number => {
    if (count === 0) return 0;
    const first = next;
    next += count;
    chains.push([first, count]);
    return first;
  };
  const allocate = (d: DirNode) => {
    if (d !== root || g.type === "FAT32") {
      d.clusters = Math.max(1, clustersFor(slots.get(d)! * DIR_ENTRY));
      d.cluster = place(d.clusters);
    }
    for (const c of d.children) {
      if (c.kind === "dir") allocate(c);
      else c.cluster = place(clustersFor(c.data.length));
    }
  };
  // Count first, so that an oversized request fails before anything is built.
  let needed = 0;
  const count = (d: DirNode) => {
    if (d !== root || g.type === "FAT32") needed += Math.max(1, clustersFor(slots.get(d)! * DIR_ENTRY));
    for (const c of d.children) {
      if (c.kind === "dir") count(c);
      else {
        if (c.data.length > 0xffffffff) throw new Error(`file ${d.path}/${c.name} is over 4 GiB, FAT's file size limit`);
        needed += clustersFor(c.data.length);
      }
    }
  };
  count(root);
  if (needed > g.clusterCount) {
    const needMiB = Math.ceil((needed * clusterBytes * 1.05) / 2 ** 20) + 3;
    throw new Error(
      `the files need ${needed} clusters of ${clusterBytes} bytes but the ${g.type} volume has ${g.clusterCount}: ` +
        `use an image of at least ${needMiB} MiB`,
    );
  }
  allocate(root);
  const usedClusters = next - 2;

  // Data region: only the used clusters are materialized.
  const data = new Uint8Array(usedClusters * clusterBytes);
  const dataView = new DataView(data.buffer);
  const clusterAt = (cluster: number) => (cluster - 2) * clusterBytes;
  const rootRegion = g.type === "FAT16" ? new Uint8Array(g.rootDirSectors * SECTOR) : null;
  for (const d of dirs) {
    const isRoot = d === root;
    const region = isRoot && rootRegion ? rootRegion : data;
    const view = region === data ? dataView : new DataView(region.buffer);
    let at = isRoot && rootRegion ? 0 : clusterAt(d.cluster);
    if (isRoot) {
      if (hasLabel) {
        dirEntry(view, at, ascii11(label), ATTR_VOLUME_ID, 0, 0, stamp);
        at += DIR_ENTRY;
      }
    } else {
      const parent = d.parent!;
      dirEntry(view, at, ascii11("."), ATTR_DIRECTORY, d.cluster, 0, stamp);
      dirEntry(view, at + DIR_ENTRY, ascii11(".."), ATTR_DIRECTORY, parent === root ? 0 : parent.cluster, 0, stamp);
      at += 2 * DIR_ENTRY;
    }
    const assigned = names.get(d)!;
    d.children.forEach((c, i) => {
      const { short, needsLfn } = assigned[i]!;
      if (needsLfn) {
        const lfn = lfnEntries(c.name, short);
        region.set(lfn, at);
        at += lfn.length;
      }
      if (c.kind === "dir") dirEntry(view, at, short, ATTR_DIRECTORY, c.cluster, 0, stamp);
      else dirEntry(view, at, short, ATTR_ARCHIVE, c.cluster, c.data.length, stamp);
      at += DIR_ENTRY;
    });
    for (const c of d.children) if (c.kind === "file" && c.cluster) data.set(c.data, clusterAt(c.cluster));
  }

  // The FAT: entries 0 and 1 reserved (media byte, clean-shutdown bits), then one chain per object.
  const entryBytes = g.type === "FAT32" ? 4 : 2;
  const eoc = g.type === "FAT32" ? 0x0fffffff : 0xffff;
  const fatUsed = Math.ceil((next * entryBytes) / SECTOR) * SECTOR;
  const fat = new Uint8Array(fatUsed);
  const fv = new DataView(fat.buffer);
  const setFat = g.type === "FAT32" ? (i: number, v: number) => fv.setUint32(i * 4, v, true) : (i: number, v: number) => fv.setUint16(i * 2, v, true);
  setFat(0, g.type === "FAT32" ? 0x0ffffff8 : 0xfff8);
  setFat(1, eoc);
  for (const [first, n] of chains) {
    for (let k = 0; k < n - 1; k++) setFat(first + k, first + k + 1);
    setFat(first + n - 1, eoc);
  }

  const freeClusters = g.clusterCount - usedClusters;
  // FSInfo's next-free hint: the first cluster after our contiguous allocation, or "unknown" when the volume is full.
  const nextFree = next < g.clusterCount + 2 ? next : 0xffffffff;
  image.add(offset, reservedRegion(g, label, options, freeClusters, nextFree));
  const fatStart = offset + g.reservedSectors * SECTOR;
  image.add(fatStart, fat);
  image.add(fatStart + g.fatSectors * SECTOR, fat);
  if (rootRegion) image.add(offset + (g.reservedSectors + 2 * g.fatSectors) * SECTOR, rootRegion);
  image.add(offset + g.firstDataSector * SECTOR, data);
  return { geometry: g, clusterBytes, usedClusters, freeClusters };
}

/** Boot sector (and for FAT32 FSInfo plus the backups at sectors 6 and 7). */
function reservedRegion(g: FatGeometry, label: string, o: FatOptions, freeClusters: number, nextFree: number): Uint8Array {
  const out = new Uint8Array(g.reservedSectors * SECTOR);
  const v = new DataView(out.buffer);
  const text = (at: number, s: string, len: number) =>
    out.set(Uint8Array.from(s.padEnd(len, " ").slice(0, len), (c) => c.charCodeAt(0)), at);
  out.set(g.type === "FAT32" ? [0xeb, 0x58, 0x90] : [0xeb, 0x3c, 0x90], 0);
  text(3, "MSWIN4.1", 8);
  v.setUint16(11, SECTOR, true);
  v.setUint8(13, g.sectorsPerCluster);
  v.setUint16(14, g.reservedSectors, true);
  v.setUint8(16, 2);
  v.setUint16(17, g.rootEntries, true);
  v.setUint16(19, g.type === "FAT16" && g.totalSectors < 0x10000 ? g.totalSectors : 0, true);
  v.setUint8(21, 0xf8);
  v.setUint16(22, g.type === "FAT16" ? g.fatSectors : 0, true);
  v.setUint16(24, 63, true);
  v.setUint16(26, 255, true);
  v.setUint32(28, o.hiddenSectors, true);
  v.setUint32(32, g.type === "FAT16" && g.totalSectors < 0x10000 ? 0 : g.totalSectors, true);
  // The extended BPB sits at 36 (FAT16) or 64 (FAT32, after the FAT32-only fields).
  const ext = g.type === "FAT32" ? 64 : 36;
  if (g.type === "FAT32") {
    v.setUint32(36, g.fatSectors, true);
    v.setUint32(44, 2, true); // root directory cluster
    v.setUint16(48, 1, true); // FSInfo sector
    v.setUint16(50, 6, true); // backup boot sector
  }
  v.setUint8(ext, 0x80);
  v.setUint8(ext + 2, 0x29);
  v.setUint32(ext + 3, o.volumeId >>> 0, true);
  text(ext + 7, label, 11);
  text(ext + 18, g.type === "FAT32" ? "FAT32" : "FAT16", 8);
  out[510] = 0x55;
  out[511] = 0xaa;
  if (g.type === "FAT32") {
    const fs = SECTOR;
    v.setUint32(fs, 0x41615252, true);
    v.setUint32(fs + 484, 0x61417272, true);
    v.setUint32(fs + 488, freeClusters, true);
    v.setUint32(fs + 492, nextFree, true);
    v.setUint32(fs + 508, 0xaa550000, true);
    out.copyWithin(6 * SECTOR, 0, 2 * SECTOR);
  }
  return out;
}
