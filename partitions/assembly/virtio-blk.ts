// The I/O partition's virtio-blk driver (docs/specs/storage-channel.md §8): a modern (virtio 1.x) PCI virtio-blk
// function the host definition gives the I/O partition, found in the device list page the ultravisor maps read-only
// at DEVLIST, driven from CPL 3 through its memory BAR, which the ultravisor maps uncached at DEVWIN + its physical
// address (docs/specs/pci-devices.md), with the hw.mmio_* intrinsics. One split virtqueue of QSIZE descriptors in a
// page of this partition's own memory, one request at a time, completion by polling the used ring. Bus addresses come
// from the monitor's DMA_ADDR hypercall (docs/specs/hypercall-abi.md), for this partition's own pages and for a
// storage client's pages alike; nothing here computes a physical address. Field offsets: virtio 1.x §4.1.4.3
// (common configuration), §2.6 (split virtqueues), §5.2 (block device).

import { HC_DMA_ADDR, HC_YIELD } from "./partition";

@external("hw", "hypercall")
declare function hypercall(nr: i64, a: i64, b: i64): i64;
@external("hw", "mfence")
declare function mfence(): void;
@external("hw", "pause")
declare function pause(): void;
@external("hw", "rdtsc")
declare function rdtsc(): i64;
@external("hw", "mmio_read8")
declare function mmio_read8(addr: u64): u32;
@external("hw", "mmio_read16")
declare function mmio_read16(addr: u64): u32;
@external("hw", "mmio_read32")
declare function mmio_read32(addr: u64): u32;
@external("hw", "mmio_write8")
declare function mmio_write8(addr: u64, v: u32): void;
@external("hw", "mmio_write16")
declare function mmio_write16(addr: u64, v: u32): void;
@external("hw", "mmio_write32")
declare function mmio_write32(addr: u64, v: u32): void;


// The device list (docs/specs/pci-devices.md §4, monitor-gen/pci.ts PCI_LIST).
const DEVLIST: u64 = 0x3fff_ffff_e000;
const DEVWIN: u64 = 0x4000_0000_0000;
const LIST_MAGIC: u32 = 0x43505655;
const LIST_HEADER: u64 = 64;
const ENTRY: u64 = 256;
const E_VENDOR: u64 = 2;
const E_DEVICE: u64 = 4;
const E_OWNER: u64 = 12;
const E_NOTIFY_MULT: u64 = 16;
const E_DMA: u64 = 20;
const E_BAR: u64 = 32;
const E_CAPS: u64 = 134;
const E_CAP: u64 = 136;
const VIRTIO_VENDOR: u32 = 0x1af4;
const VIRTIO_BLK_MODERN: u32 = 0x1042;
const CAP_COMMON: u32 = 1;
const CAP_NOTIFY: u32 = 2;
const CAP_DEVICE: u32 = 4;

// Common configuration (virtio 1.x §4.1.4.3).
const C_DEVICE_FEATURE_SELECT: u64 = 0x00;
const C_DEVICE_FEATURE: u64 = 0x04;
const C_DRIVER_FEATURE_SELECT: u64 = 0x08;
const C_DRIVER_FEATURE: u64 = 0x0c;
const C_STATUS: u64 = 0x14;
const C_QUEUE_SELECT: u64 = 0x16;
const C_QUEUE_SIZE: u64 = 0x18;
const C_QUEUE_MSIX: u64 = 0x1a;
const C_QUEUE_ENABLE: u64 = 0x1c;
const C_QUEUE_NOTIFY_OFF: u64 = 0x1e;
const C_QUEUE_DESC: u64 = 0x20;
const C_QUEUE_DRIVER: u64 = 0x28;
const C_QUEUE_DEVICE: u64 = 0x30;
const S_ACKNOWLEDGE: u32 = 1;
const S_DRIVER: u32 = 2;
const S_DRIVER_OK: u32 = 4;
const S_FEATURES_OK: u32 = 8;
const S_NEEDS_RESET: u32 = 0x40;
/** Feature bits: VIRTIO_F_VERSION_1 (32, the high word's bit 0) and VIRTIO_BLK_F_FLUSH (9). */
const F_FLUSH: u32 = 1 << 9;
/**
 * VIRTIO_F_ACCESS_PLATFORM (33, the high word's bit 1): offered by a device behind the IOMMU (`iommu_platform=on`,
 * docs/specs/storage-channel.md §9), which refuses FEATURES_OK unless it is accepted. Bus addresses come from DMA_ADDR
 * either way, so accepting it changes nothing here.
 */
const F_ACCESS_PLATFORM_HIGH: u32 = 1 << 1;
const NO_VECTOR: u32 = 0xffff;

// The queue page: descriptor table, available ring, used ring, one request header and its status byte.
export const QSIZE: u32 = 64;
const QPAGE = memory.data(4096, 4096);
const Q_AVAIL: usize = 1024;
const Q_USED: usize = 2048;
const Q_HEADER: usize = 3072;
const Q_STATUS: usize = 3088;
const D_NEXT: u16 = 1;
const D_WRITE: u16 = 2;
/** virtio-blk request types (§5.2.6). */
export const T_IN: u32 = 0;
export const T_OUT: u32 = 1;
export const T_FLUSH: u32 = 4;

let common: u64 = 0;
let notifyAt: u64 = 0;
let qBus: u64 = 0;
let availIdx: u16 = 0;
let usedSeen: u16 = 0;
let size: u32 = 0;
let flush = false;
/** The device negotiated VIRTIO_F_ACCESS_PLATFORM: it sits behind the IOMMU (storage-channel.md §9), and the client
 * pages DMA_ADDR mapped for a request are unmapped with DMA_DONE when it ends. */
export let accessPlatform = false;
/** The device's capacity in 512-byte sectors; 0 while there is no device. */
export let capacity: u64 = 0;
/** PCI address (bus << 8 | device << 3 | function) of the device driven, for the partition's line. */
export let bdf: u32 = 0;
/** TSC spent polling for the device since boot (the storage benchmark subtracts it: the device's time, not ours). */
export let waited: u64 = 0;
/** Descriptors built for the request being assembled (data descriptors start at 1; 0 is the header). */
let nDesc: u32 = 0;
/**
 * The storage pair's primary failing on purpose (docs/specs/storage-failover.md §7.4): the next request is handed to
 * the device and notified, then the partition ends with a wasm trap, the device still working on it.
 */
let stopAfterNotify = false;
export function stopAfterNextNotify(): void {
  stopAfterNotify = true;
}

/** The address at DEVWIN of the structure capability `type` of the device entry `e` points at, or 0. */
function capAddress(e: u64, type: u32): u64 {
  let n = mmio_read16(e + E_CAPS);
  if (n > 5) n = 5;
  for (let k: u32 = 0; k < n; k++) {
    const c = e + E_CAP + <u64>k * 12;
    if ((mmio_read32(c) & 0xff) != type) continue;
    const bar = (mmio_read32(c) >> 8) & 0xff;
    if (bar > 5) return 0;
    const base = <u64>mmio_read32(e + E_BAR + <u64>bar * 16) | (<u64>mmio_read32(e + E_BAR + <u64>bar * 16 + 4) << 32);
    if (base == 0) return 0;
    return DEVWIN + base + <u64>mmio_read32(c + 4);
  }
  return 0;
}

function write64(at: u64, v: u64): void {
  mmio_write32(at, <u32>v);
  mmio_write32(at + 4, <u32>(v >> 32));
}

/**
 * Finds this partition's first modern virtio-blk with bus mastering on and brings it up: reset, ACKNOWLEDGE, DRIVER,
 * features VERSION_1 (+ FLUSH when offered), FEATURES_OK, queue 0 at the queue page's bus address, DRIVER_OK. Returns
 * 0, or a negative step number at which it gave up (−1 no device, −2 structures missing, −3 DMA_ADDR refused,
 * −4 features refused, −5 queue unusable).
 */
export function blkInit(self: u32): i32 {
  if (mmio_read32(DEVLIST) != LIST_MAGIC) return -1;
  let count = mmio_read32(DEVLIST + 4);
  if (count > 31) count = 31;
  let e: u64 = 0;
  for (let k: u32 = 0; k < count; k++) {
    const at = DEVLIST + LIST_HEADER + <u64>k * ENTRY;
    if (mmio_read32(at + E_OWNER) != self || mmio_read32(at + E_DMA) != 1) continue;
    if (mmio_read16(at + E_VENDOR) != VIRTIO_VENDOR || mmio_read16(at + E_DEVICE) != VIRTIO_BLK_MODERN) continue;
    e = at;
    break;
  }
  if (e == 0) return -1;
  bdf = mmio_read16(e);
  common = capAddress(e, CAP_COMMON);
  const notify = capAddress(e, CAP_NOTIFY);
  const device = capAddress(e, CAP_DEVICE);
  if (common == 0 || notify == 0 || device == 0) return -2;
  const q = hypercall(HC_DMA_ADDR, -1, <i64>QPAGE);
  if (q < 0) return -3;
  qBus = <u64>q;
  mmio_write8(common + C_STATUS, 0);
  while (mmio_read8(common + C_STATUS) != 0) pause();
  mmio_write8(common + C_STATUS, S_ACKNOWLEDGE);
  mmio_write8(common + C_STATUS, S_ACKNOWLEDGE | S_DRIVER);
  mmio_write32(common + C_DEVICE_FEATURE_SELECT, 0);
  const low = mmio_read32(common + C_DEVICE_FEATURE);
  mmio_write32(common + C_DEVICE_FEATURE_SELECT, 1);
  const high = mmio_read32(common + C_DEVICE_FEATURE);
  if ((high & 1) == 0) return -4;
  flush = (low & F_FLUSH) != 0;
  mmio_write32(common + C_DRIVER_FEATURE_SELECT, 0);
  mmio_write32(common + C_DRIVER_FEATURE, low & F_FLUSH);
  mmio_write32(common + C_DRIVER_FEATURE_SELECT, 1);
  mmio_write32(common + C_DRIVER_FEATURE, 1 | (high & F_ACCESS_PLATFORM_HIGH));
  accessPlatform = (high & F_ACCESS_PLATFORM_HIGH) != 0;
  mmio_write8(common + C_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
  if ((mmio_read8(common + C_STATUS) & S_FEATURES_OK) == 0) return -4;
  mmio_write16(common + C_QUEUE_SELECT, 0);
  const max = mmio_read16(common + C_QUEUE_SIZE);
  if (max < 4) return -5;
  size = max < QSIZE ? max : QSIZE;
  if ((size & (size - 1)) != 0) return -5;
  mmio_write16(common + C_QUEUE_SIZE, size);
  mmio_write16(common + C_QUEUE_MSIX, NO_VECTOR);
  for (let i: usize = 0; i < 4096; i += 8) store<u64>(QPAGE + i, 0);
  availIdx = 0; // a reset device starts its rings at 0 (a second blkInit after DEVICE_NEEDS_RESET)
  usedSeen = 0;
  write64(common + C_QUEUE_DESC, qBus);
  write64(common + C_QUEUE_DRIVER, qBus + <u64>Q_AVAIL);
  write64(common + C_QUEUE_DEVICE, qBus + <u64>Q_USED);
  notifyAt = notify + <u64>mmio_read16(common + C_QUEUE_NOTIFY_OFF) * <u64>mmio_read32(e + E_NOTIFY_MULT);
  mmio_write16(common + C_QUEUE_ENABLE, 1);
  mmio_write8(common + C_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
  capacity = <u64>mmio_read32(device) | (<u64>mmio_read32(device + 4) << 32);
  return 0;
}

/** The device status register (virtio 1.x §2.1), for the rogue-dma test build's line. */
export function deviceStatus(): u32 {
  return common == 0 ? 0 : mmio_read8(common + C_STATUS);
}

/** Data descriptors one request may carry (the header and the status take two). */
export function maxData(): u32 {
  return size - 2;
}

/** Starts a request: no data descriptors yet. */
export function blkBegin(): void {
  nDesc = 1;
}

/** Adds a data descriptor of `len` bytes at bus address `bus` (device-writable when `toMemory`). */
export function blkAdd(bus: u64, len: u32, toMemory: bool): void {
  const d = QPAGE + <usize>nDesc * 16;
  store<u64>(d, bus);
  store<u32>(d + 8, len);
  store<u16>(d + 12, D_NEXT | (toMemory ? D_WRITE : 0));
  store<u16>(d + 14, <u16>(nDesc + 1));
  nDesc++;
}

/**
 * Submits the request built since blkBegin — header (type, sector), the data descriptors, the status byte — and polls
 * the used ring until the device returns it (a few spins, then the rest of the quantum yielded). Returns true when
 * the device's status is OK; false also when the device stopped with DEVICE_NEEDS_RESET instead (a descriptor it could
 * not reach: blkInit brings it up again). FLUSH without the negotiated feature succeeds at once (writes then go through).
 */
export function blkSubmit(type: u32, sector: u64): bool {
  if (type == T_FLUSH && !flush) return true;
  store<u32>(QPAGE + Q_HEADER, type);
  store<u32>(QPAGE + Q_HEADER + 4, 0);
  store<u64>(QPAGE + Q_HEADER + 8, sector);
  store<u8>(QPAGE + Q_STATUS, 0xff);
  store<u64>(QPAGE, qBus + <u64>Q_HEADER);
  store<u32>(QPAGE + 8, 16);
  store<u16>(QPAGE + 12, D_NEXT);
  store<u16>(QPAGE + 14, 1);
  const s = QPAGE + <usize>nDesc * 16;
  store<u64>(s, qBus + <u64>Q_STATUS);
  store<u32>(s + 8, 1);
  store<u16>(s + 12, D_WRITE);
  store<u16>(s + 14, 0);
  store<u16>(QPAGE + Q_AVAIL + 4 + <usize>(<u32>availIdx % size) * 2, 0);
  mfence();
  availIdx++;
  store<u16>(QPAGE + Q_AVAIL + 2, availIdx);
  mfence();
  const t0 = rdtsc();
  mmio_write16(notifyAt, 0);
  if (stopAfterNotify) unreachable();
  let spins: u32 = 0;
  while (load<u16>(QPAGE + Q_USED + 2) == usedSeen) {
    if (++spins < 2000) pause();
    else {
      if ((mmio_read8(common + C_STATUS) & S_NEEDS_RESET) != 0) return false;
      hypercall(HC_YIELD, 0, 0);
    }
  }
  waited += <u64>(rdtsc() - t0);
  usedSeen++;
  mfence();
  return load<u8>(QPAGE + Q_STATUS) == 0;
}
