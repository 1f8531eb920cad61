// Did-you-mean: the known name nearest a misspelt one (recipe keys, loss names, loss options).

/** Edit distance (insertions, deletions, substitutions, adjacent swaps), for did-you-mean. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The known key nearest `key`, when near enough to be a misspelling (a third of its length). */
export function nearestKey(key: string, known: Iterable<string>): string | undefined {
  const within = Math.max(2, Math.floor(key.length / 3));
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    // The lengths' difference bounds the distance from below: a name that far off is never near (nor worth the
    // quadratic work).
    if (Math.abs(key.length - name.length) > within) continue;
    const distance = editDistance(key, name);
    if (!best || distance < best.distance) best = { name, distance };
  }
  return best && best.distance <= within ? best.name : undefined;
}
