import { isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Node } from 'yaml';

/** Finds the line of a policy path ("services.payments.retry.atempts") in a document's YAML or JSON text. */
export type LineLocator = (path: string) => number | undefined;

/**
 * Parses the text once more, keeping node positions (only when a document has problems, so loading a
 * good file costs nothing extra). A path that goes deeper than the text (a required key that is
 * missing) gets the line of the deepest node that exists.
 */
export function lineLocator(text: string): LineLocator {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  const lineOf = (node: { range?: [number, number, number] | null | undefined } | null | undefined): number | undefined =>
    node?.range ? lineCounter.linePos(node.range[0]).line : undefined;
  return (path) => {
    let node: unknown = doc.contents;
    let line = lineOf(doc.contents as Node | null);
    let rest = path;
    while (rest !== '' && node) {
      rest = rest.replace(/^\./, '');
      if (isSeq(node)) {
        const index = /^\[(\d+)\]/.exec(rest);
        if (!index) break;
        node = node.items[Number(index[1])];
        rest = rest.slice(index[0].length);
        line = lineOf(node as Node) ?? line;
      } else if (isMap(node)) {
        // A key may itself contain ".", so the longest key that the path continues from wins.
        let next: { key: unknown; value: unknown } | undefined;
        let taken = 0;
        for (const pair of node.items) {
          const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
          if (key === undefined || key.length <= taken || !rest.startsWith(key)) continue;
          const after = rest[key.length];
          if (after === undefined || after === '.' || after === '[') [next, taken] = [pair, key.length];
        }
        if (!next) break;
        line = lineOf(next.key as Node) ?? line;
        node = next.value;
        rest = rest.slice(taken);
      } else break;
    }
    return line;
  };
}
