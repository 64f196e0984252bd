import { neutralizeCsvCell } from './attempt-export';

describe('neutralizeCsvCell', () => {
  it.each(["=cmd|' /C calc'!A0", '+1', '-1+2', '@SUM(A1)', '\tx', '\rx'])(
    'prefixes %j with an apostrophe',
    (cell) => {
      expect(neutralizeCsvCell(cell)).toBe(`'${cell}`);
    },
  );

  it('leaves ordinary text alone', () => {
    expect(neutralizeCsvCell('curl/8.5.0')).toBe('curl/8.5.0');
    expect(neutralizeCsvCell('a=b')).toBe('a=b');
  });
});
