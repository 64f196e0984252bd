'use strict';
/**
 * Side by side in rounds: each round measures every contender once, in a rotated order, so that
 * a change in the machine's load over the run hits both sides alike. A ratio is the median of
 * the per-round ratios.
 */

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : sorted[Math.floor(sorted.length / 2)];
}

/** Combines per-round summaries of one contender (see load.js `summarise`). */
function combine(summaries) {
  const requests = summaries.reduce((sum, item) => sum + item.requests, 0);
  const errors = summaries.reduce((sum, item) => sum + item.errors, 0);
  const seconds = summaries.reduce((sum, item) => sum + item.seconds, 0);
  const byStatus = {};
  for (const item of summaries) {
    for (const [label, count] of Object.entries(item.by_status)) {
      byStatus[label] = (byStatus[label] ?? 0) + count;
    }
  }
  return {
    requests,
    errors,
    seconds: Number(seconds.toFixed(3)),
    per_second: Number(((requests - errors) / seconds).toFixed(1)),
    per_second_by_round: summaries.map((item) => item.per_second),
    p50_ms: median(summaries.map((item) => item.p50_ms)),
    p99_ms: median(summaries.map((item) => item.p99_ms)),
    by_status: byStatus,
  };
}

/**
 * Runs `measures` (name → async function returning a summary) for `rounds` rounds. Returns the
 * combined summary of each name and `ratio(a, b)`, the median over rounds of a/b per second.
 */
async function inRounds(rounds, measures) {
  const names = Object.keys(measures);
  const perRound = Object.fromEntries(names.map((name) => [name, []]));
  for (let round = 0; round < rounds; round += 1) {
    const order = names.map((_, index) => names[(index + round) % names.length]);
    for (const name of order) {
      perRound[name].push(await measures[name]());
    }
  }
  const combined = Object.fromEntries(names.map((name) => [name, combine(perRound[name])]));
  const ratio = (a, b) =>
    Number(
      median(
        perRound[a].map(
          (item, index) => item.per_second / Math.max(perRound[b][index].per_second, 0.001),
        ),
      ).toFixed(3),
    );
  return { combined, ratio };
}

module.exports = { combine, inRounds, median };
