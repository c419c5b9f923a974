// A data-center run as data people read and plot (docs/specs/datacenter.md §5; layer: datacenter/): versioned JSON of
// every event and memory sample, CSV of the events (RFC 4180 quoting), and two standalone SVG charts — each host's
// memory in use over time (a step line per host) and the distribution of migration downtimes (a histogram with the
// 300 ms QEMU target marked). `uvt dc run` writes them.
import he from "he";
import type { DataCenter, DcEvent, MemorySample } from "./datacenter.ts";

export const DC_FORMAT = "uv-dc/1";

export interface DcOutput {
  format: typeof DC_FORMAT;
  seed: number;
  until: number;
  hosts: Array<{ name: string; rack: string; memory: number; pcpus: number }>;
  events: DcEvent[];
  memory: MemorySample[];
  summary: { placed: number; rehosted: number; lost: number; migrations: number; aborted: number; maxDowntimeMs: number | null };
}

export function dcOutput(dc: DataCenter): DcOutput {
  const ev = dc.events;
  const count = (k: DcEvent["kind"]): number => ev.filter((e) => e.kind === k).length;
  const downs = ev.filter((e) => e.kind === "migration-done").map((e) => e.downtimeMs!);
  return {
    format: DC_FORMAT, seed: dc.scenario.seed, until: dc.scenario.until,
    hosts: dc.scenario.hosts.map((h) => ({ name: h.name, rack: h.rack, memory: Number(h.memory), pcpus: h.pcpus })),
    events: ev.map((e) => ({ ...e })), memory: dc.memory.map((m) => ({ ...m })),
    summary: { placed: count("placed"), rehosted: count("rehosted"), lost: count("lost") + count("unplaced"), migrations: count("migration-done"), aborted: count("migration-aborted"), maxDowntimeMs: downs.length ? Math.max(...downs) : null },
  };
}

export const CSV_COLUMNS = ["t_ms", "kind", "partition", "host", "from", "to", "rounds", "stop", "downtime_ms", "sent_pages", "reason"] as const;

/** RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled. */
function field(v: unknown): string {
  const s = v === undefined || v === null ? "" : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function dcCsv(out: DcOutput): string {
  const rows = out.events.map((e) => [e.t, e.kind, e.partition, e.host, e.from, e.to, e.rounds, e.stop, e.downtimeMs, e.sentPages, e.reason].map(field).join(","));
  return `${[CSV_COLUMNS.join(","), ...rows].join("\r\n")}\r\n`;
}

const esc = (s: string): string => he.escape(s);
const FONT = 'font-family="DejaVu Sans, Arial, sans-serif" font-size="12"';

function frame(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(title)}">`,
    `<title>${esc(title)}</title>`, `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="12" y="20" ${FONT} font-weight="bold">${esc(title)}</text>`, ...body, "</svg>", "",
  ].join("\n");
}

function colour(i: number): string {
  return `hsl(${(i * 137) % 360}, 60%, 45%)`;
}

/** Each host's memory in use (% of its memory) over simulated time: one step line per host. */
export function memoryChart(out: DcOutput): string {
  const W = 760;
  const L = 60;
  const T = 40;
  const PW = 520;
  const PH = 240;
  const x = (t: number): number => L + (t / out.until) * PW;
  const y = (frac: number): number => T + PH - frac * PH;
  const body: string[] = [`<rect x="${L}" y="${T}" width="${PW}" height="${PH}" fill="none" stroke="#999"/>`];
  for (const f of [0, 0.25, 0.5, 0.75, 1]) body.push(`<text x="${L - 6}" y="${y(f) + 4}" text-anchor="end" ${FONT}>${f * 100}%</text>`);
  for (const f of [0, 0.5, 1]) body.push(`<text x="${x(f * out.until)}" y="${T + PH + 16}" text-anchor="middle" ${FONT}>${((f * out.until) / 1000).toFixed(1)} s</text>`);
  out.hosts.forEach((h, i) => {
    const s = out.memory.filter((m) => m.host === h.name);
    if (!s.length) return;
    let d = "";
    let last = s[0]!;
    d += `M${x(last.t).toFixed(1)},${y(last.used / last.memory).toFixed(1)}`;
    for (const m of s.slice(1)) {
      d += ` H${x(m.t).toFixed(1)} V${y(m.used / m.memory).toFixed(1)}`;
      last = m;
    }
    d += ` H${x(out.until).toFixed(1)}`;
    body.push(`<path d="${d}" fill="none" stroke="${colour(i)}" stroke-width="2"><title>${esc(h.name)}</title></path>`);
    body.push(`<rect x="${L + PW + 20}" y="${T + i * 18}" width="12" height="12" fill="${colour(i)}"/>`, `<text x="${L + PW + 38}" y="${T + i * 18 + 10}" ${FONT}>${esc(`${h.name} (${h.rack})`)}</text>`);
  });
  return frame(W, Math.max(T + PH + 40, T + out.hosts.length * 18 + 20), "Memory in use per host over time", body);
}

/** Histogram of migration downtimes in 50 ms buckets, with the 300 ms downtime target marked. */
export function downtimeChart(out: DcOutput): string {
  const downs = out.events.filter((e) => e.kind === "migration-done").map((e) => e.downtimeMs!);
  const BUCKET = 50;
  const n = Math.max(8, Math.ceil((Math.max(0, ...downs) + 1) / BUCKET));
  const counts = new Array<number>(n).fill(0);
  for (const d of downs) counts[Math.min(n - 1, Math.floor(d / BUCKET))]!++;
  const L = 50;
  const T = 40;
  const PW = Math.max(400, n * 40);
  const PH = 200;
  const top = Math.max(1, ...counts);
  const bw = PW / n;
  const body: string[] = [`<rect x="${L}" y="${T}" width="${PW}" height="${PH}" fill="none" stroke="#999"/>`];
  counts.forEach((c, i) => {
    const h = (c / top) * PH;
    body.push(`<rect x="${(L + i * bw + 2).toFixed(1)}" y="${(T + PH - h).toFixed(1)}" width="${(bw - 4).toFixed(1)}" height="${h.toFixed(1)}" fill="#4a7fb5"><title>${i * BUCKET}–${(i + 1) * BUCKET} ms: ${c}</title></rect>`);
    if (i % 2 === 0) body.push(`<text x="${(L + i * bw).toFixed(1)}" y="${T + PH + 16}" ${FONT}>${i * BUCKET}</text>`);
  });
  body.push(`<text x="${L - 6}" y="${T + 10}" text-anchor="end" ${FONT}>${top}</text>`, `<text x="${L + PW / 2}" y="${T + PH + 32}" text-anchor="middle" ${FONT}>downtime, ms (${downs.length} migration(s))</text>`);
  const tx = L + (300 / BUCKET) * bw;
  if (tx <= L + PW) body.push(`<line x1="${tx}" y1="${T}" x2="${tx}" y2="${T + PH}" stroke="#c0392b" stroke-dasharray="4 3"/>`, `<text x="${tx + 4}" y="${T + 14}" ${FONT} fill="#c0392b">300 ms target (QEMU)</text>`);
  return frame(L + PW + 30, T + PH + 44, "Migration downtime distribution", body);
}
