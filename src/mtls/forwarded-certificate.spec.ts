import { singleHeader } from './forwarded-certificate';

describe('singleHeader', () => {
  it('reads a header given once', () => {
    expect(singleHeader({ 'x-a': 'value' }, 'x-a')).toEqual({ ok: true, value: 'value' });
    expect(singleHeader({ 'x-a': ['value'] }, 'x-a')).toEqual({ ok: true, value: 'value' });
  });

  it('reads an absent header as undefined', () => {
    expect(singleHeader({}, 'x-a')).toEqual({ ok: true, value: undefined });
    expect(singleHeader({ 'x-a': [] }, 'x-a')).toEqual({ ok: true, value: undefined });
  });

  it('refuses a header given several times', () => {
    expect(singleHeader({ 'x-a': ['one', 'two'] }, 'x-a')).toEqual({
      ok: false,
      detail: 'x-a appears 2 times',
    });
  });
});
