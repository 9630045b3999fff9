// `--env NAME=TEMPLATE`: a variable holding the numbers of the fds a command gets, for programs that do not read
// LISTEN_FDS (nginx reads NGINX="3;4;"). A template is text with placeholders in braces:
//
//   {fds}        the numbers, separated by spaces         3 4
//   {fds/SEP}    the numbers, separated by SEP            {fds/,} -> 3,4
//   {fdsSEP}     each number followed by SEP              {fds;}  -> 3;4;
//   {fd:NAME}    the number of the one fd named NAME      {fd:web} -> 3
//   {count}      how many fds                             2
//   {{ and }}    a literal brace
//
// Templates are parsed when the option is read, so a bad one is refused before anything is opened; `{fd:NAME}` is
// resolved against the fds themselves, before any is moved.
import { UsageError } from "../errors.ts";

type Part =
  | { text: string }
  | { fds: "join" | "each"; sep: string }
  | { fd: string }
  | { count: true };

export interface EnvTemplate {
  name: string;
  /** As the user wrote it, for messages. */
  source: string;
  parts: Part[];
}

/** What the fds are called and where they end up in the command. */
export interface PlacedFd {
  number: number;
  name?: string;
}

// Set by fdbroker itself (or by the service manager, for NOTIFY_SOCKET): a template must not shadow them.
const RESERVED = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET"];

export const ENV_HELP = `--env NAME=TEMPLATE sets NAME to the numbers of the fds CMD gets: {fds} (3 4),
{fds/SEP} (separated by SEP: {fds/,} is 3,4), {fdsSEP} (each followed by SEP:
{fds;} is 3;4;, as nginx's NGINX wants), {fd:NAME} (the fd named NAME), {count};
{{ and }} are braces. Example: --env 'NGINX={fds;}'`;

export function parseEnvTemplate(text: string): EnvTemplate {
  const eq = text.indexOf("=");
  const name = eq < 0 ? "" : text.slice(0, eq);
  const bad = (why: string) => new UsageError(`bad --env ${text}: ${why}`);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw bad("expected NAME=TEMPLATE, NAME letters, digits and _");
  if (RESERVED.includes(name)) throw bad(`${name} is set by fdbroker or the service manager`);
  const template = text.slice(eq + 1);
  const parts: Part[] = [];
  let literal = "";
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if ((c === "{" || c === "}") && template[i + 1] === c) {
      literal += c;
      i++;
    } else if (c === "}") {
      throw bad(`a lone } at ${i + 1} ({{ and }} are literal braces)`);
    } else if (c === "{") {
      const end = template.indexOf("}", i);
      const open = template.indexOf("{", i + 1);
      if (end < 0 || (open >= 0 && open < end)) throw bad(`{ at ${i + 1} is not closed`);
      if (literal) parts.push({ text: literal });
      literal = "";
      parts.push(placeholder(template.slice(i + 1, end), bad));
      i = end;
    } else {
      literal += c;
    }
  }
  if (literal) parts.push({ text: literal });
  return { name, source: text, parts };
}

function placeholder(body: string, bad: (why: string) => UsageError): Part {
  if (body === "count") return { count: true };
  if (body === "fds") return { fds: "join", sep: " " };
  if (body.startsWith("fds/") && body.length > 4) return { fds: "join", sep: body.slice(4) };
  if (body.startsWith("fds") && !body.startsWith("fds/")) return { fds: "each", sep: body.slice(3) };
  if (body.startsWith("fd:") && body.length > 3) return { fd: body.slice(3) };
  throw bad(`unknown placeholder {${body}} (fds, fds/SEP, fdsSEP, fd:NAME or count)`);
}

/** Collects --env options; the same NAME twice is refused. */
export function collectEnv(text: string, list: EnvTemplate[] = []): EnvTemplate[] {
  const t = parseEnvTemplate(text);
  if (list.some((o) => o.name === t.name)) throw new UsageError(`--env ${t.name} given twice`);
  return [...list, t];
}

/** The names `{fd:NAME}` placeholders refer to. */
export function namesUsed(templates: readonly EnvTemplate[]): string[] {
  const out: string[] = [];
  for (const t of templates) for (const p of t.parts) if ("fd" in p) out.push(p.fd);
  return out;
}

/** Every template expanded for these fds; a `{fd:NAME}` that names no fd, or several, is a usage error. */
export function expandEnv(templates: readonly EnvTemplate[], fds: readonly PlacedFd[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const t of templates) {
    let value = "";
    for (const p of t.parts) {
      if ("text" in p) value += p.text;
      else if ("count" in p) value += String(fds.length);
      else if ("fd" in p) value += String(named(fds, p.fd, t.source));
      else for (let i = 0; i < fds.length; i++) value += p.fds === "each" ? `${fds[i]!.number}${p.sep}` : `${i > 0 ? p.sep : ""}${fds[i]!.number}`;
    }
    env[t.name] = value;
  }
  return env;
}

function named(fds: readonly PlacedFd[], name: string, source: string): number {
  const found = fds.filter((f) => f.name === name);
  if (found.length === 1) return found[0]!.number;
  const names = fds.map((f) => f.name ?? "(unnamed)").join(", ") || "none";
  throw new UsageError(`--env ${source}: ${found.length === 0 ? "no" : found.length} fds named ${JSON.stringify(name)} (the fds: ${names})`);
}
