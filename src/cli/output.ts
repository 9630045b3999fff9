// Human output for people (colour only on a TTY, NO_COLOR respected) and JSON for scripts.
import pc from "picocolors";

export function colorsFor(stream: NodeJS.WriteStream) {
  const on = !!stream.isTTY && !process.env.NO_COLOR && process.env.TERM !== "dumb";
  return pc.createColors(on);
}

export const out = colorsFor(process.stdout);

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Left-aligned columns, widths from the widest cell; the header is dimmed when colour is on. */
export function table(header: string[], rows: string[][]): string {
  const strip = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => strip(r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c + " ".repeat(widths[i]! - strip(c).length))).join("  ").trimEnd();
  return [out.dim(line(header)), ...rows.map(line)].join("\n");
}
