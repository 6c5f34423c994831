/**
 * Where a process's CPU went, from a `node --cpu-prof` profile: self time per stage (a
 * stage is a group of source files and V8 builtins, see STAGES) and the top functions.
 * Figures only. Usage: node dist/bench/profile-summary.js FILE.cpuprofile [TOP]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  children?: number[];
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** First match wins: the order puts the narrow stages before the wide ones. */
const STAGES: Array<[string, (fn: string, url: string) => boolean]> = [
  ['idle', (fn) => fn === '(idle)'],
  ['garbage collection', (fn) => fn === '(garbage collector)'],
  ['kafkajs CRC32C', (_, url) => /kafkajs\/src\/protocol\/recordBatch\/crc32C/.test(url)],
  ['kafkajs encode (records, varints, buffers)', (_, url) => /kafkajs\/src\/protocol\/(encoder|recordBatch|requests\/produce)/.test(url)],
  ['kafkajs other (network, partitioner, retries)', (_, url) => /kafkajs\//.test(url)],
  ['our Kafka producer (src/core/kafka)', (_, url) => /dist\/src\/core\/kafka\//.test(url)],
  // The JavaScript side of librdkafka (produce calls, delivery reports); its own threads are not in a --cpu-prof profile.
  ['librdkafka binding (produce, delivery reports)', (_, url) => /@confluentinc\/kafka-javascript\//.test(url)],
  ['pgoutput decode', (_, url) => /pg-logical-replication|pgoutput-plugin/.test(url)],
  ['column type decode', (_, url) => /source\/pg-types|postgres-array|pg-types\//.test(url)],
  ['pg / pg-query-stream (wire protocol)', (_, url) => /node_modules\/(pg|pg-protocol|pg-query-stream|pg-cursor)\//.test(url)],
  ['event building (assembler, envelope, ids)', (_, url) => /capture\/assembler|core\/event\/|backfill\/backfill/.test(url)],
  // JSON.stringify is inlined into its caller's self time: capture's `add` does little else.
  ['event JSON encode (JSON.stringify, Buffer.from)', (fn, url) => /^(stringify|JsonStringify|JSON\.stringify)$/.test(fn) || (fn === 'add' && /capture\/capturer/.test(url))],
  ['capture loop, replication stream', (_, url) => /capture\/(capturer|replication-stream)/.test(url)],
  ['node internals (streams, net, buffers) not under the above', (_, url) => url.startsWith('node:')],
  ['(program) / native', (fn, url) => fn === '(program)' || url === ''],
  ['other', () => true],
];

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: profile-summary FILE.cpuprofile [TOP]\n');
  process.exit(2);
}
const top = Number(process.argv[3] ?? 15);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
for (let i = 0; i < profile.samples.length; i++) selfUs.set(profile.samples[i]!, (selfUs.get(profile.samples[i]!) ?? 0) + (profile.timeDeltas[i] ?? 0));

const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const stageOf = (node: ProfileNode): string => STAGES.find(([, test]) => test(node.callFrame.functionName, node.callFrame.url))![0];
/** Node internals, builtins and unknown code count for the nearest caller that has a stage (kafkajs' Buffer copies count as kafkajs). */
const GENERIC = new Set(['node internals (streams, net, buffers) not under the above', '(program) / native', 'other']);
function attributed(node: ProfileNode): string {
  const own = stageOf(node);
  if (!GENERIC.has(own) || node.callFrame.functionName === '(program)') return own;
  for (let id = parent.get(node.id); id !== undefined; id = parent.get(id)) {
    const stage = stageOf(byId.get(id)!);
    if (!GENERIC.has(stage)) return stage;
  }
  return own;
}
const stages = new Map<string, number>();
const functions = new Map<string, number>();
let total = 0;
let busy = 0;
for (const [id, us] of selfUs) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  const stage = attributed(byId.get(id)!);
  stages.set(stage, (stages.get(stage) ?? 0) + us);
  total += us;
  if (stage === 'idle') continue;
  busy += us;
  const where = url ? `${url.replace(/^.*\/(node_modules|dist)\//, '')}:${lineNumber + 1}` : '';
  const name = `${functionName || '(anonymous)'} ${where}`.trim();
  functions.set(name, (functions.get(name) ?? 0) + us);
}
const pct = (us: number) => `${((100 * us) / busy).toFixed(1)} %`.padStart(7);
process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (idle ${(((total - busy) / total) * 100).toFixed(0)} %)\n`);
process.stdout.write('busy time by stage:\n');
for (const [stage, us] of [...stages].filter(([s]) => s !== 'idle').sort((a, b) => b[1] - a[1])) process.stdout.write(`${pct(us)}  ${stage}\n`);
process.stdout.write(`top ${top} functions (self time):\n`);
for (const [name, us] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(us)}  ${name}\n`);
