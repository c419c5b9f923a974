// The audit log's header (docs/specs/memory-layout.md §5.1): accessors over the log region named by the attached
// Ultravisor Index. Every header write is followed by hw.flush: the log is the spec's un-cached memory ([0156]).
import { hw_flush } from "./hw";
import { LH_CAPACITY, LH_COMMITTED, LH_HEAD, LH_STATE, LOG_HEADER } from "./layout";
import { logBase, pageAddr } from "./state";

@inline export function logHeader(): usize {
  return pageAddr(logBase);
}
@inline export function records(): usize {
  return pageAddr(logBase) + LOG_HEADER;
}
@inline export function lh(off: u32): u32 {
  return load<u32>(logHeader() + off);
}
@inline export function setLh(off: u32, v: u32): void {
  store<u32>(logHeader() + off, v);
}
export function flushHeader(): void {
  hw_flush(logHeader(), LOG_HEADER);
}
@inline export function capacity(): u32 {
  return lh(LH_CAPACITY);
}
@inline export function head(): u32 {
  return lh(LH_HEAD);
}
@inline export function committedEnd(): u32 {
  return lh(LH_COMMITTED);
}
@inline export function inFlight(): bool {
  return lh(LH_STATE) != 0;
}
