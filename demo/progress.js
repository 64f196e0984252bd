'use strict';
/** A one-line progress bar on stderr (a line every few seconds when stderr is not a terminal). */

const WIDTH = 30;
const REDRAW_MS = 250;
const PLAIN_EVERY_MS = 5000;

class ProgressBar {
  constructor(durationMs) {
    this.durationMs = durationMs;
    this.started = Date.now();
    this.interactive = Boolean(process.stderr.isTTY);
    this.lastPlain = 0;
  }

  /** Redraws from the two tallies, which fill in as the traffic runs, until `finish()`. */
  track(legitimate, attack) {
    this.legitimate = legitimate;
    this.attack = attack;
    this.timer = setInterval(() => this.draw(), REDRAW_MS);
  }

  draw(final = false) {
    const { legitimate, attack } = this;
    const elapsed = Date.now() - this.started;
    const share = final ? 1 : Math.min(1, elapsed / this.durationMs);
    const filled = Math.round(share * WIDTH);
    const counts =
      legitimate && attack
        ? `  legitimate ${legitimate.count('200')}/${legitimate.sent} ok` +
          `  attacker ${attack.sent} sent, ${attack.count('200')} in`
        : '';
    const line =
      `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ` +
      `${Math.round(elapsed / 1000)}s of ${Math.round(this.durationMs / 1000)}s${counts}`;
    if (this.interactive) {
      process.stderr.write(`\r${line}\x1b[K${final ? '\n' : ''}`);
    } else if ((final && line !== this.lastLine) || elapsed - this.lastPlain >= PLAIN_EVERY_MS) {
      this.lastLine = line;
      this.lastPlain = elapsed;
      process.stderr.write(`${line}\n`);
    }
  }

  finish() {
    clearInterval(this.timer);
    this.draw(true);
  }
}

module.exports = { ProgressBar };
