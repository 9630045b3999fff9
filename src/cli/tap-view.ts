// Tap records as lines: one per event for people, one JSON object per line for scripts. Lines gather in a buffer
// that the loop writes once per turn: a write per message would cost more than relaying it.
import { summarizeFd, type FdDescription } from "../describe/index.ts";
import type { Client, TapRecord, TapSink } from "../tap/index.ts";
import { escapeText, jsonText } from "../text.ts";
import { accessCell, payloadView } from "./describe-view.ts";
import { isSysError, writeAll } from "../sys/index.ts";
import { out } from "./output.ts";

const encoder = new TextEncoder();

const clock = (t: Date) => t.toISOString().slice(11, 23);

function previewText(preview: Uint8Array, bytes: number): string {
  if (bytes === 0) return "";
  const p = payloadView(preview);
  const more = bytes > preview.length ? "..." : "";
  return " " + ("text" in p ? `${escapeText(JSON.stringify(p.text))}${more}` : `hex ${p.hex}${more}`);
}

const fdLine = (d: FdDescription, i: number) =>
  `    fd ${i}: ${d.kind} ${accessCell(d)}${d.inode === null ? "" : ` inode ${d.inode}`} ${escapeText(summarizeFd(d))}`;

function clientText(c: Client): string {
  if (c.address !== null) return `sender ${escapeText(c.address)}`;
  if (c.pid === null) return "client unknown";
  return `pid ${c.pid} uid ${c.uid} gid ${c.gid} ${escapeText(c.command ?? "?")}`;
}

function humanLines(r: TapRecord): string {
  const at = out.dim(clock(r.time));
  switch (r.event) {
    case "listening":
      return `${at} listening at ${escapeText(r.listen)} (${r.type}), relaying to ${escapeText(r.upstream)}`;
    case "open":
      return `${at} #${r.conn} open ${clientText(r.client)}`;
    case "close":
      return `${at} #${r.conn} close${r.reason ? ` (${escapeText(r.reason)})` : ""}`;
    case "error":
      return `${at} ${r.conn === null ? "" : `#${r.conn} `}${out.red("error")} ${escapeText(r.message)}`;
    case "message": {
      const n = r.fds.length;
      const notes = [
        n ? ` ${n} fd${n === 1 ? "" : "s"}` : "",
        r.ctrunc ? ` ${out.red(`MSG_CTRUNC (more fds than fit; ${r.ctrunc.closedFds} that arrived were closed, none passed on)`)}` : "",
        r.payloadTruncated ? ` ${out.red("MSG_TRUNC (longer than --buffer; passed on cut)")}` : "",
      ].join("");
      const head = `${at} #${r.conn} ${out.cyan(r.dir)} ${r.bytes} byte${r.bytes === 1 ? "" : "s"}${notes}${previewText(r.preview, r.bytes)}`;
      return [head, ...r.fds.map(fdLine)].join("\n");
    }
  }
}

function jsonRecord(r: TapRecord, client: Client | undefined) {
  const time = r.time.toISOString();
  if (r.event !== "message") return { ...r, time };
  // Spelled out rather than spread (one per message relayed), in the order the fields have always had.
  return {
    event: r.event, time, conn: r.conn, dir: r.dir, bytes: r.bytes, fds: r.fds, ctrunc: r.ctrunc, payloadTruncated: r.payloadTruncated,
    preview: payloadView(r.preview), client: client ?? null,
  };
}

/**
 * A sink writing to stdout: `json` one object per line, else text. A reader that goes away (`tap ... | head`) calls
 * `onClosed` instead of ending the process at once as printText would: a swapped socket file must be put back first.
 */
export function lineSink(json: boolean, onClosed: () => void): TapSink {
  let closed = false;
  let lines: string[] = [];
  // Who each connection's client is, so every JSON message names it without a lookup by the reader.
  const clients = new Map<number, Client>();
  return {
    record(r) {
      if (r.event === "open") clients.set(r.conn, r.client);
      lines.push(json ? jsonText(jsonRecord(r, "conn" in r && r.conn !== null ? clients.get(r.conn) : undefined)) : humanLines(r));
      if (r.event === "close") clients.delete(r.conn);
    },
    flush() {
      if (lines.length === 0 || closed) return;
      const text = `${lines.join("\n")}\n`;
      lines = [];
      try {
        writeAll(1, encoder.encode(text));
      } catch (e) {
        if (!isSysError(e, "EPIPE")) throw e;
        closed = true;
        onClosed();
      }
    },
  };
}
