import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';

/**
 * No import cycles in src/, over the compiled import graph (dist/src: what runs; type-only
 * imports are gone there). Two levels: modules, and the folders of src/core (a folder that
 * imports another that imports it back is a cycle too, even through different modules:
 * delivery ⇄ sinks, capture ⇄ health were). Only files built from a src/*.ts count, so a
 * stale file left in dist/ by an older build cannot fail the test.
 */
const here = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.resolve(here, '../../src');
const SRC = path.resolve(here, '../../../src');

const IMPORT = /^\s*(?:import|export)\s(?:[^'";]*?\sfrom\s)?['"](\.{1,2}\/[^'"]+)['"]/gm;

export function importGraph(dist: string, src: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.js') && existsSync(path.join(src, path.relative(dist, file)).replace(/\.js$/, '.ts'))) {
        const text = readFileSync(file, 'utf8');
        graph.set(path.relative(dist, file), [...text.matchAll(IMPORT)].map((m) => path.relative(dist, path.resolve(path.dirname(file), m[1]!))));
      }
    }
  };
  walk(dist);
  return graph;
}

/** Strongly connected components with more than one member, or a member importing itself (Tarjan). */
export function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const indexOf = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    indexOf.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!indexOf.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indexOf.get(w)!));
    }
    if (low.get(v) === indexOf.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!indexOf.has(v)) visit(v);
  return found;
}

/** `core/delivery/deliverer.js` -> `core/delivery`; a file directly in core/ is its own unit. */
const folderOf = (file: string): string => {
  const parts = file.split(path.sep);
  return parts[0] === 'core' && parts.length > 2 ? `core/${parts[1]}` : file.replace(/\.js$/, '');
};

export function folderGraph(graph: Map<string, string[]>): Map<string, string[]> {
  const folders = new Map<string, Set<string>>();
  for (const [from, tos] of graph) {
    const a = folderOf(from);
    if (!folders.has(a)) folders.set(a, new Set());
    for (const to of tos) if (folderOf(to) !== a) folders.get(a)!.add(folderOf(to));
  }
  return new Map([...folders].map(([k, v]) => [k, [...v]]));
}

/** For a message: which imports make up a folder cycle. */
function edgesWithin(graph: Map<string, string[]>, folders: string[]): string[] {
  const inCycle = new Set(folders);
  return [...graph].flatMap(([from, tos]) =>
    tos.filter((to) => folderOf(to) !== folderOf(from) && inCycle.has(folderOf(from)) && inCycle.has(folderOf(to))).map((to) => `${from} -> ${to}`),
  );
}

const graph = importGraph(DIST, SRC);

it('the compiled graph is read (sanity: the deliverer imports the sink registry)', () => {
  assert.ok(graph.size > 100, `only ${graph.size} modules found under ${DIST}`);
  assert.ok(graph.get(path.join('core', 'delivery', 'deliverer.js'))?.includes(path.join('core', 'sinks', 'registry.js')));
});

it('no module of src/ imports itself back through others', () => {
  assert.deepEqual(cycles(graph), []);
});

it('no folder of src/core imports itself back through another', () => {
  const found = cycles(folderGraph(graph));
  assert.deepEqual(
    found.map((c) => ({ folders: c, imports: edgesWithin(graph, c) })),
    [],
  );
});

it('the check finds a cycle it is shown (planted: two modules importing each other)', () => {
  assert.deepEqual(cycles(new Map([['a.js', ['b.js']], ['b.js', ['a.js']], ['c.js', ['a.js']]])), [['a.js', 'b.js']]);
  assert.deepEqual(cycles(folderGraph(new Map([['core/x/a.js', ['core/y/b.js']], ['core/y/b.js', ['core/y/c.js']], ['core/y/c.js', ['core/x/d.js']], ['core/x/d.js', []]]))), [['core/x', 'core/y']]);
});
