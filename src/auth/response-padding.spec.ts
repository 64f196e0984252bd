import { ResponsePadding } from './response-padding';

describe('ResponsePadding', () => {
  afterEach(() => jest.useRealTimers());

  it('starts from the initial median until an attempt reaches the hash', () => {
    const padding = new ResponsePadding(80);

    expect(padding.medianMs()).toBe(80);
    padding.observe(30);
    expect(padding.medianMs()).toBe(30);
  });

  it('takes the median of what it observed, not the mean', () => {
    const padding = new ResponsePadding();
    for (const latency of [40, 42, 41, 900, 39]) {
      padding.observe(latency);
    }

    expect(padding.medianMs()).toBe(41);
  });

  it('forgets the oldest samples once its window of 101 is full', () => {
    const padding = new ResponsePadding();
    for (let index = 0; index < 101; index += 1) {
      padding.observe(500);
    }
    for (let index = 0; index < 51; index += 1) {
      padding.observe(20);
    }

    expect(padding.medianMs()).toBe(20);
  });

  it('delays an answer that never hashed up to the median', async () => {
    jest.useFakeTimers();
    const padding = new ResponsePadding();
    padding.observe(100);
    let done = false;

    const padded = padding.pad(30).then(() => (done = true));
    await jest.advanceTimersByTimeAsync(69);
    expect(done).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    await padded;

    expect(done).toBe(true);
  });

  it('adds no delay to an answer already as slow as the median', async () => {
    jest.useFakeTimers();
    const padding = new ResponsePadding();
    padding.observe(100);
    let done = false;

    const padded = padding.pad(150).then(() => (done = true));
    await jest.advanceTimersByTimeAsync(0);
    await padded;

    expect(done).toBe(true);
  });
});
