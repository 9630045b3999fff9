// Showing fd descriptions: a table for people, JSON for scripts. Shared by recv, inspect and the broker's get,
// so it takes groups (one per message or entry), each with an optional payload and its fds.
import { summarizeFd, type FdDescription, type SocketDescription } from "../describe/index.ts";
import { escapeText } from "../text.ts";
import { out, printJson, printText, styled, table, type Styled } from "./output.ts";

interface ViewFd {
  /** What identifies the fd to the reader: its number (inspect) or its position (recv). */
  id: number;
  name?: string;
  desc: FdDescription;
}

export interface ViewGroup {
  title?: string;
  payload?: Uint8Array;
  fds: ViewFd[];
}

/** One decoder for every payload: tap shows a preview of each message it relays. */
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Payload as text when it is printable UTF-8, else as hex. */
export function payloadView(bytes: Uint8Array): { text: string } | { hex: string } {
  try {
    const text = strictUtf8.decode(bytes);
    if (!/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(text)) return { text };
  } catch {}
  return { hex: Buffer.from(bytes).toString("hex") };
}

/** Why a flag ends in `*`: said once under a table that has one. */
const RUNTIME_CLOEXEC_NOTE =
  "* close-on-exec set by the runtime (Bun) at start-up, not by the launcher: an fd marked close-on-exec is never inherited";

export function accessCell(d: FdDescription): string {
  if (d.kind === "gone") return "-";
  const flags = d.cloexecByRuntime ? d.flags.map((f) => (f === "cloexec" ? "cloexec*" : f)) : d.flags;
  return [d.access, ...flags].join(" ");
}

/** Most peers named in one PEER cell; the rest are counted (every one is in --json). */
const PEERS_SHOWN = 3;

/** `-> 4242/5 python3`, the processes holding a socket's other end; `-> socket:[INODE]` when none was found. */
export function peerCell(s: SocketDescription | null): string {
  if (!s?.peers || s.peerInode == null) return "";
  if (s.peers.length === 0) return `-> socket:[${s.peerInode}]`;
  const named = s.peers.slice(0, PEERS_SHOWN).map((p) => `${p.pid}/${p.fd} ${p.command}`);
  const more = s.peers.length - named.length;
  return `-> ${named.join(", ")}${more > 0 ? ` +${more} more` : ""}`;
}

const num = (n: number | null | undefined) => (n == null ? "-" : String(n));

/** RECV-Q, SEND-Q, INFLIGHT and STATE: inspect's socket columns, `-` where they do not apply. */
function socketCells(d: FdDescription): string[] {
  const s = d.socket;
  return [num(s?.recvQ), num(s?.sendQ), num(s?.fdsInFlight), s?.state ?? "-"];
}

function row(f: ViewFd, named: boolean, sockets: boolean): (string | Styled)[] {
  const d = f.desc;
  const cells: (string | Styled)[] = [String(f.id)];
  if (named) cells.push(f.name ?? "");
  cells.push(
    styled(d.kind, out.cyan),
    accessCell(d),
    d.offset === null ? "-" : String(d.offset),
    d.inode === null ? "-" : String(d.inode),
    ...(sockets ? socketCells(d) : []),
    d.kind === "gone" ? "(closed while being read)" : summarizeFd(d),
    ...(sockets ? [peerCell(d.socket)] : []),
  );
  return cells;
}

function formatGroups(groups: readonly ViewGroup[], idHeader = "FD", socketColumns = false): string {
  const parts: string[] = [];
  for (const g of groups) {
    const facts: string[] = [];
    if (g.payload) {
      const p = payloadView(g.payload);
      const n = g.payload.length;
      facts.push(`payload ${"text" in p ? escapeText(JSON.stringify(p.text)) : `hex ${p.hex}`} (${n} byte${n === 1 ? "" : "s"})`);
    }
    if (g.title || g.payload) facts.push(`${g.fds.length} fd${g.fds.length === 1 ? "" : "s"}`);
    if (g.title) parts.push(`${out.bold(escapeText(g.title))}: ${facts.join(", ")}`);
    else if (facts.length) parts.push(facts.join(", "));
    const named = g.fds.some((f) => f.name !== undefined);
    const sockets = socketColumns && g.fds.some((f) => f.desc.socket !== null);
    const header = [idHeader, ...(named ? ["NAME"] : []), "KIND", "ACCESS", "OFFSET", "INODE"];
    header.push(...(sockets ? ["RECV-Q", "SEND-Q", "INFLIGHT", "STATE", "WHAT", "PEER"] : ["WHAT"]));
    if (g.fds.length) parts.push(table(header, g.fds.map((f) => row(f, named, sockets))));
    if (g.fds.some((f) => f.desc.cloexecByRuntime)) parts.push(out.dim(RUNTIME_CLOEXEC_NOTE));
  }
  return parts.join("\n");
}

/**
 * One shape for recv, get and send (README, "JSON output"): every group has every key, null where it does not
 * apply (get has no payload, recv without --names no names), so one script reads all three.
 */
function groupsJson(groups: readonly ViewGroup[]) {
  return groups.map((g) => ({
    title: g.title ?? null,
    bytes: g.payload ? g.payload.length : null,
    payload: g.payload ? payloadView(g.payload) : null,
    fds: g.fds.map((f) => ({ id: f.id, name: f.name ?? null, ...f.desc })),
  }));
}

/** `socketColumns`: inspect's queue, state and peer columns, added to a table that lists a socket. */
export function printGroups(groups: readonly ViewGroup[], json: boolean, idHeader?: string, socketColumns = false): void {
  if (json) printJson(groupsJson(groups));
  else if (groups.length) printText(`${formatGroups(groups, idHeader, socketColumns)}\n`);
}
