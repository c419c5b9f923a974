// Channel-type metadata of core.wasm (docs/specs/channel-abi.md section 5): the zone each type references and the
// cardinality rules for the guest and host roles ([0113]), with the check run when a partition is defined.


const CHAN_TYPES: u32 = 9;
const OK: i32 = 0;
const BAD_ARGUMENT: i32 = -4; // the channel status code CH_BAD_ARGUMENT

const RULE_ALL_ZERO_OR_MORE: u32 = 0;
const RULE_ALL_ONE_OR_MORE: u32 = 1;
const RULE_EXACTLY_ONE: u32 = 2;
const RULE_ZERO_OR_ONE: u32 = 3;
const RULE_HIGHEST_ZERO_OR_MORE: u32 = 4;
const RULE_HIGHEST_ONE_OR_MORE: u32 = 5;

const ROLE_GUEST: u32 = 0;
const ROLE_HOST: u32 = 1;

// Zone kinds: what the zone a channel references selects.
const ZONE_MONITOR: u32 = 0;
const ZONE_ULTRAVISOR: u32 = 1;
const ZONE_FIRMWARE: u32 = 2;
const ZONE_CONSOLE: u32 = 3;
const ZONE_STORAGE_NETWORK: u32 = 4;
const ZONE_NETWORK: u32 = 5;
const ZONE_POWER: u32 = 6;
const ZONE_MEMORY: u32 = 7;
const ZONE_PROCESSOR: u32 = 8;

/** Cardinality rule code of channel type `type` for `role`, or 0xFFFFFFFF for an unknown type or role. */
export function chan_type_rule(type: u32, role: u32): u32 {
  if (type >= CHAN_TYPES || role > ROLE_HOST) return 0xffff_ffff;
  if (role == ROLE_HOST) {
    // A host has exactly one ultravisor partition serving the command channel; every other zone it offers is "all of".
    return type == 1 ? RULE_EXACTLY_ONE : RULE_ALL_ZERO_OR_MORE;
  }
  if (type == 0) return RULE_EXACTLY_ONE; // control ([0124])
  if (type <= 3) return RULE_ZERO_OR_ONE; // command, boot, console ([0125]-[0127])
  if (type <= 5) return RULE_ALL_ZERO_OR_MORE; // storage, network ([0128], [0129])
  return RULE_HIGHEST_ZERO_OR_MORE; // power, memory, processor ([0130]-[0133])
}

/** Zone kind a channel of `type` references (ZONE_*), 0xFFFFFFFF for an unknown type. Type codes and zone kinds coincide. */
export function chan_type_zone(type: u32): u32 {
  return type < CHAN_TYPES ? type : 0xffff_ffff;
}

function minOf(rule: u32): u32 {
  return rule == RULE_ALL_ONE_OR_MORE || rule == RULE_EXACTLY_ONE || rule == RULE_HIGHEST_ONE_OR_MORE ? 1 : 0;
}

function maxOf(rule: u32): u32 {
  return rule == RULE_EXACTLY_ONE || rule == RULE_ZERO_OR_ONE ? 1 : 0xffff_ffff;
}

/**
 * Checks the channel list of a partition definition: `types` holds `n` type codes (u8) in channel-number order.
 * Returns 0 when every type's rule for `role` holds, else `violation | type << 8`: 1 too few, 2 too many,
 * 3 unknown type code (bits 8-15 = index in the list instead), 4 unknown role.
 */
export function chan_cardinality_check(role: u32, types: usize, n: u32): u32 {
  if (role > ROLE_HOST) return 4;
  // Counting per type without an allocator: the list is short (a partition has few channels), so count by scanning.
  for (let i: u32 = 0; i < n; i++) {
    if (<u32>load<u8>(types + i) >= CHAN_TYPES) return 3 | ((i & 0xff) << 8);
  }
  for (let t: u32 = 0; t < CHAN_TYPES; t++) {
    let count: u32 = 0;
    for (let i: u32 = 0; i < n; i++) if (<u32>load<u8>(types + i) == t) count++;
    const rule = chan_type_rule(t, role);
    if (count < minOf(rule)) return 1 | (t << 8);
    if (count > maxOf(rule)) return 2 | (t << 8);
  }
  return 0;
}

/**
 * Writes at `out` one byte per channel of the list: 1 when the channel is in effect under its type's rule ("all of":
 * every channel; "highest rank": only the lowest-numbered channel of the type), 0 otherwise. Returns the number in
 * effect, or 0xFFFFFFFF for an unknown role or type.
 */
export function chan_effective(role: u32, types: usize, n: u32, out: usize): u32 {
  if (role > ROLE_HOST) return 0xffff_ffff;
  let seen: u32 = 0; // bit t: a channel of type t was already taken
  let count: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const t = <u32>load<u8>(types + i);
    if (t >= CHAN_TYPES) return 0xffff_ffff;
    const rule = chan_type_rule(t, role);
    const highest = rule == RULE_HIGHEST_ZERO_OR_MORE || rule == RULE_HIGHEST_ONE_OR_MORE;
    const on = !highest || (seen & (1 << t)) == 0;
    seen |= 1 << t;
    store<u8>(out + i, on ? 1 : 0);
    if (on) count++;
  }
  return count;
}


export function chan_type_known(type: u32): bool {
  return type < CHAN_TYPES;
}

/** Writes the 16 GUID bytes of channel type `type` at `dst` (EFI byte order). Returns 0, or -4 for an unknown type. */
export function chan_type_guid(type: u32, dst: usize): i32 {
  if (type >= CHAN_TYPES) return BAD_ARGUMENT;
  if (type == 0) {
    // 2b3c2d10-7ef5-4ad8-b966-3448b7386b3d (visorbus controlvm)
    store<u32>(dst, 0x2b3c2d10);
    store<u16>(dst + 4, 0x7ef5);
    store<u16>(dst + 6, 0x4ad8);
    store<u64>(dst + 8, 0x3d6b38b7483466b9); // bytes b9 66 34 48 b7 38 6b 3d
  } else if (type == 4) {
    // 414815ed-c58c-11da-95a9-00e08161165f (visorbus vhba)
    store<u32>(dst, 0x414815ed);
    store<u16>(dst + 4, 0xc58c);
    store<u16>(dst + 6, 0x11da);
    store<u64>(dst + 8, 0x5f166181e000a995);
  } else if (type == 5) {
    // 8cd5994d-c58e-11da-95a9-00e08161165f (visorbus vnic)
    store<u32>(dst, 0x8cd5994d);
    store<u16>(dst + 4, 0xc58e);
    store<u16>(dst + 6, 0x11da);
    store<u64>(dst + 8, 0x5f166181e000a995);
  } else {
    // 9a5d5c52-3b0e-4f0c-8e71-1c2f0d6a4bTT: the project's own types, TT = type code
    store<u32>(dst, 0x9a5d5c52);
    store<u16>(dst + 4, 0x3b0e);
    store<u16>(dst + 6, 0x4f0c);
    store<u64>(dst + 8, 0x004b6a0d2f1c718e | (<u64>type << 56));
  }
  return OK;
}
