// Pictures of a simulated run, drawn from the same data `uvt sim --format json` prints (sim/output.ts), as standalone
// SVG: the memory map per scale (one bar of 1024 entries per map page, as the spec's Fig. 8 draws the fractal map),
// the schedule per processor over one 16-quantum cycle (Fig. 6), and the channel topology (servers left, clients
// right, one arrow per channel). `uvt sim FILE --svg DIR` writes them; `uvt report` embeds them in one HTML page.
import he from "he";
import { formatBytes, SCALE_NAMES } from "../core/mapview.ts";
import type { SimOutput } from "./output.ts";

const FONT = 'font-family="DejaVu Sans, Arial, sans-serif"';
const esc = (s: string): string => he.escape(s);

/** The same colour for the same owner in every picture; the pseudo partitions get fixed, quiet colours. */
export function colourOf(name: string): string {
  const fixed: Record<string, string> = { Available: "#e8e8e8", Missing: "#ffffff", Boot: "#7f7f7f", Ultravisor: "#303030", Idle: "#cfd8dc", idle: "#cfd8dc" };
  if (fixed[name]) return fixed[name];
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619) >>> 0;
  return `hsl(${h % 360}, 62%, ${48 + ((h >>> 9) % 14)}%)`;
}

function svg(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(title)}">`,
    `<title>${esc(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...body,
    "</svg>",
    "",
  ].join("\n");
}

function legend(names: string[], x: number, y: number, width: number): { body: string[]; height: number } {
  const body: string[] = [];
  let cx = x;
  let cy = y;
  for (const n of names) {
    const w = 26 + n.length * 7;
    if (cx + w > x + width) {
      cx = x;
      cy += 20;
    }
    body.push(`<rect x="${cx}" y="${cy}" width="14" height="14" fill="${colourOf(n)}" stroke="#555" stroke-width="0.5"/>`);
    body.push(`<text x="${cx + 18}" y="${cy + 11}" font-size="11" ${FONT}>${esc(n)}</text>`);
    cx += w;
  }
  return { body, height: cy - y + 20 };
}

/** A map drawn per page: beyond this many pages, the rest are counted, not drawn. */
const MAX_MAP_ROWS = 48;

/** The memory map: one bar per map page (top scale first), each entry coloured by owner; hatched = map below. */
export function memoryMapSvg(o: SimOutput): string {
  const rows = o.memoryMap.slice(0, MAX_MAP_ROWS);
  const left = 250;
  const barW = 1024;
  const rowH = 26;
  const top = 40;
  const owners = [...new Set(rows.flatMap((m) => m.entries.map((e) => e.ownerName ?? e.owner ?? "")).filter(Boolean))];
  const body: string[] = [
    '<defs><pattern id="below" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fafafa"/><line x1="0" y1="0" x2="0" y2="6" stroke="#888" stroke-width="2"/></pattern></defs>',
    `<text x="10" y="24" font-size="15" font-weight="bold" ${FONT}>Memory map${o.name ? ` — ${esc(o.name)}` : ""} (one bar per map page, 1024 entries; hatched: divided into the scale below)</text>`,
  ];
  rows.forEach((m, r) => {
    const y = top + r * rowH;
    const size = formatBytes(BigInt(m.entryBytes));
    body.push(`<text x="10" y="${y + 15}" font-size="11" ${FONT}>${SCALE_NAMES[m.scale] ?? m.scale} at Mem${esc(m.page)} (${size} entries)</text>`);
    for (const e of m.entries) {
      const who = e.ownerName ?? e.owner ?? "";
      const fill = e.mapBelow ? "url(#below)" : colourOf(who);
      const tip = e.mapBelow ? `${e.first}: map Mem${e.mapBelow}` : `${e.first}${e.last > e.first ? `-${e.last}` : ""}: ${who}`;
      body.push(`<rect class="entry" x="${left + e.first}" y="${y}" width="${e.last - e.first + 1}" height="${rowH - 6}" fill="${fill}" stroke="#444" stroke-width="0.3"><title>${esc(tip)}</title></rect>`);
    }
  });
  const more = o.memoryMap.length - rows.length;
  let y = top + rows.length * rowH + 6;
  if (more > 0) {
    body.push(`<text x="10" y="${y + 12}" font-size="11" ${FONT}>… and ${more} more map page(s) (see uvt sim --format json)</text>`);
    y += 20;
  }
  const lg = legend(owners, 10, y + 6, left + barW - 10);
  body.push(...lg.body);
  return svg(left + barW + 20, y + 16 + lg.height, "memory map per scale", body);
}

/** The schedule in effect: one row per PCPU, one cell per quantum of the 16-quantum cycle, labelled by VCPU. */
export function scheduleSvg(o: SimOutput): string {
  const pcpus = o.schedule?.pcpus ?? [];
  const cellW = 64;
  const cellH = 28;
  const left = 70;
  const top = 58;
  const body: string[] = [
    `<text x="10" y="24" font-size="15" font-weight="bold" ${FONT}>Schedule${o.schedule ? ` generation ${o.schedule.generation} at quantum ${esc(o.schedule.quantum)}` : ": none (a host without processors)"}</text>`,
  ];
  for (let k = 0; k < 16; k++) body.push(`<text x="${left + k * cellW + cellW / 2}" y="${top - 8}" font-size="11" text-anchor="middle" ${FONT}>${k}</text>`);
  pcpus.forEach((p, r) => {
    const y = top + r * cellH;
    body.push(`<text x="10" y="${y + 18}" font-size="12" ${FONT}>PCPU ${p.pcpu}</text>`);
    p.quanta.forEach((q, k) => {
      const part = q.replace(/\.\d+$/, "");
      body.push(`<rect class="quantum" x="${left + k * cellW}" y="${y}" width="${cellW}" height="${cellH - 4}" fill="${colourOf(part)}" stroke="#444" stroke-width="0.5"><title>${esc(`PCPU ${p.pcpu} quantum ${k}: ${q}`)}</title></rect>`);
      body.push(`<text x="${left + k * cellW + cellW / 2}" y="${y + 16}" font-size="10" text-anchor="middle" ${FONT}>${esc(q.length > 10 ? `${q.slice(0, 9)}…` : q)}</text>`);
    });
    body.push(`<text x="${left + 16 * cellW + 8}" y="${y + 16}" font-size="11" ${FONT}>busy ${p.busy}/16${p.dedicated ? " dedicated" : ""}</text>`);
  });
  return svg(left + 16 * cellW + 120, top + Math.max(1, pcpus.length) * cellH + 20, "schedule per processor over one cycle", body);
}

/** Partitions and channels: servers on the left, clients on the right, an arrow from each client to its server. */
export function channelsSvg(o: SimOutput): string {
  const label = (name: string | null, pnText: string | null): string => name ?? pnText ?? "-";
  const servers = [...new Set(o.channels.map((c) => label(c.serverName, c.server)))];
  const clients = [...new Set(o.channels.map((c) => label(c.clientName, c.client)))];
  const boxW = 170;
  const boxH = 26;
  const gap = 12;
  const top = 50;
  const leftX = 20;
  const rightX = 520;
  const yOf = (list: string[], n: string): number => top + list.indexOf(n) * (boxH + gap);
  const body: string[] = [
    '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#444"/></marker></defs>',
    `<text x="10" y="24" font-size="15" font-weight="bold" ${FONT}>Channels: ${o.channels.length} (client → server)</text>`,
  ];
  o.channels.forEach((c) => {
    const s = label(c.serverName, c.server);
    const cl = label(c.clientName, c.client);
    const y1 = yOf(clients, cl) + boxH / 2;
    const y2 = yOf(servers, s) + boxH / 2;
    body.push(`<line class="channel" x1="${rightX}" y1="${y1}" x2="${leftX + boxW + 4}" y2="${y2}" stroke="#444" stroke-width="1" marker-end="url(#arrow)"><title>${esc(`channel ${c.slot}: ${c.type}, ${cl} → ${s}`)}</title></line>`);
    // The label sits near the client's end, where a client's channels fan out and do not overlap.
    const t = 0.22;
    const lx = rightX + (leftX + boxW + 4 - rightX) * t;
    const ly = y1 + (y2 - y1) * t;
    body.push(`<text x="${lx}" y="${ly - 3}" font-size="9" text-anchor="middle" fill="#333" ${FONT}>${esc(`${c.slot} ${c.type}`)}</text>`);
  });
  for (const [list, x] of [[servers, leftX], [clients, rightX]] as const) {
    for (const n of list) {
      const y = yOf(list, n);
      body.push(`<rect class="partition" x="${x}" y="${y}" width="${boxW}" height="${boxH}" rx="4" fill="${colourOf(n)}" stroke="#333"/>`);
      body.push(`<text x="${x + boxW / 2}" y="${y + 17}" font-size="12" text-anchor="middle" ${FONT}>${esc(n)}</text>`);
    }
  }
  const rows = Math.max(servers.length, clients.length, 1);
  return svg(rightX + boxW + 20, top + rows * (boxH + gap) + 10, "channel topology", body);
}

/** The three pictures by file name. */
export function pictures(o: SimOutput): Record<"memory-map.svg" | "schedule.svg" | "channels.svg", string> {
  return { "memory-map.svg": memoryMapSvg(o), "schedule.svg": scheduleSvg(o), "channels.svg": channelsSvg(o) };
}
